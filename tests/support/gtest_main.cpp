// tests/support/gtest_main.cpp — the one main() of every GoogleTest executable (target test_main).
//
// With DANERELAY_FAIL_ON_SKIP=1 in the environment (.ci/run exports it) a skipped test is a
// failed test: CI must never read "skipped" as "passed". The listener sees every skip as it is
// reported (GTEST_SKIP in a test body, in SetUp, in SetUpTestSuite — gtest then reports a skip
// for each test of the suite) and adds a failure to the same test, with the skip's message, so
// the test ends FAILED and never prints "[  SKIPPED ]" (which ctest would count as not run).
// As a second guard, main() exits non-zero if gtest still counted a skipped test.
//
// Without the variable, skips stay skips (a developer without root may skip the port-25 tests).
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <iostream>

namespace {

bool fail_on_skip() {
  const char* v = std::getenv("DANERELAY_FAIL_ON_SKIP");
  return v != nullptr && std::strcmp(v, "1") == 0;
}

class FailOnSkip : public ::testing::EmptyTestEventListener {
 public:
  void OnTestPartResult(const ::testing::TestPartResult& r) override {
    if (!r.skipped()) return;
    // Reported from inside the reporter: the failure lands in the current test's result and
    // comes back here as a failure, which returns above.
    ADD_FAILURE_AT(r.file_name() != nullptr ? r.file_name() : "unknown", r.line_number())
        << "test skipped, and DANERELAY_FAIL_ON_SKIP=1 makes every skip a failure: " << r.message();
  }
};

}  // namespace

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  const bool strict = fail_on_skip();
  if (strict) ::testing::UnitTest::GetInstance()->listeners().Append(new FailOnSkip);
  const int rc = RUN_ALL_TESTS();
  if (strict && ::testing::UnitTest::GetInstance()->skipped_test_count() > 0) {
    std::cerr << "DANERELAY_FAIL_ON_SKIP=1: " << ::testing::UnitTest::GetInstance()->skipped_test_count()
              << " test(s) skipped\n";
    return 1;
  }
  return rc;
}
