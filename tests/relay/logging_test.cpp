// tests/relay/logging_test.cpp — the structured journald fields of a log line
// (relay/core/logging.hpp journal_fields), as a table; and `auto` resolving to the journal only
// under systemd's JOURNAL_STREAM. The native path itself: journal_e2e_test.cpp.
#include "relay/core/logging.hpp"

#include <gtest/gtest.h>

#include <cstdlib>

namespace danerelay::relay {
namespace {

using Fields = std::vector<std::pair<std::string, std::string>>;

TEST(JournalFields, Table) {
  struct Row {
    std::string line;
    Fields fields;
  };
  const std::vector<Row> rows{
      {"61B9A3F840A9: to=<User@Secure.Test>, relay=mx.secure.test[127.0.0.11]:25, delay=0.01, delays=0/0/0/0, dsn=2.0.0, "
       "status=sent (250 2.0.0 Ok)",
       {{"QUEUE_ID", "61B9A3F840A9"}, {"RECIPIENT_DOMAIN", "secure.test"}, {"DSN", "2.0.0"}, {"STATUS", "sent"}}},
      {"61B9A3F840A9: to=<user@bogus-ds.test>, relay=none, delay=0, delays=0/0/0/0, dsn=4.4.3, status=deferred (Host not found)",
       {{"QUEUE_ID", "61B9A3F840A9"}, {"RECIPIENT_DOMAIN", "bogus-ds.test"}, {"DSN", "4.4.3"}, {"STATUS", "deferred"}}},
      {"61B9A3F840A9: from=<sender@danetta.test>, size=303, nrcpt=1 (queue active)", {{"QUEUE_ID", "61B9A3F840A9"}}},
      {"61B9A3F840A9: from=<sender@danetta.test>, status=expired, returned to sender",
       {{"QUEUE_ID", "61B9A3F840A9"}, {"STATUS", "expired"}}},
      {"connect from unknown[127.0.0.1]", {}},
      {"61b9a3f840a9: lower-case is not a queue id", {}},
      {"NOQUEUE: reject: RCPT from unknown[127.0.0.1]: 554 5.7.1 <x@y>: Relay access denied; from=<a@b> to=<x@Y.example> "
       "proto=ESMTP",
       {{"RECIPIENT_DOMAIN", "y.example"}}},
  };
  for (const auto& r : rows) EXPECT_EQ(journal_fields(r.line), r.fields) << r.line;
}

TEST(LogTarget, AutoIsTheJournalOnlyUnderJournalStream) {
  using Target = config::LogSettings::Target;
  ::unsetenv("JOURNAL_STREAM");
  EXPECT_EQ(effective_target(Target::automatic), Target::stderr_);
  ::setenv("JOURNAL_STREAM", "8:12345", 1);
  EXPECT_EQ(effective_target(Target::automatic), Target::journal);
  EXPECT_EQ(effective_target(Target::stderr_), Target::stderr_);
  EXPECT_EQ(effective_target(Target::syslog), Target::syslog);
  ::unsetenv("JOURNAL_STREAM");
  EXPECT_EQ(effective_target(Target::journal), Target::journal);
}

}  // namespace
}  // namespace danerelay::relay
