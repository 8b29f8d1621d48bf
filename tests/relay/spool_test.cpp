// tests/relay/spool_test.cpp — the durable queue: round trips, recovery of damaged spools, group
// commit, the durability order (through SpoolOptions::on_disk_op) and error paths.
#include "relay/queue/spool.hpp"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>

#include "tests/support/temp_dir.hpp"

// g++ 12 false positive on coroutine frames (see smtp/client_session.cpp).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

namespace danerelay::relay {
namespace {

namespace asio = boost::asio;
namespace fs = std::filesystem;

// Runs one awaitable to completion on `io` and returns its value (rethrows its exception).
template <class T>
T run(asio::io_context& io, asio::awaitable<T> task) {
  std::optional<T> out;
  std::exception_ptr error;
  asio::co_spawn(io, std::move(task), [&](std::exception_ptr e, T v) {
    error = e;
    if (!e) out.emplace(std::move(v));
  });
  io.restart();
  io.run();
  if (error) std::rethrow_exception(error);
  return std::move(*out);
}

Envelope make_envelope(const QueueId& id, int recipients = 2) {
  Envelope e;
  e.id = id;
  e.sender = "alice@example.org";
  for (int i = 0; i < recipients; ++i) {
    e.recipients.push_back(Recipient{"rcpt" + std::to_string(i) + "@example.net", i == 0 ? "rfc822;orig@example.net" : "",
                                     static_cast<std::uint8_t>(i == 0 ? notify_failure | notify_delay : notify_never)});
  }
  e.ret = Ret::headers;
  e.envid = "ENV-42";
  e.eightbit = true;
  e.smtputf8 = false;
  // The spool keeps microseconds; use a value it can keep exactly.
  e.arrival = Clock::time_point(std::chrono::duration_cast<Clock::duration>(std::chrono::microseconds(1'700'000'000'123'456)));
  return e;
}

std::string message_text(std::size_t size, char seed = 'a') {
  std::string m = "Subject: test\r\n\r\n";
  while (m.size() < size) m += static_cast<char>(seed + static_cast<char>(m.size() % 23));
  m.resize(size);
  return m;
}

std::string read_body(const Envelope& e) {
  std::ifstream in(e.body, std::ios::binary);
  in.seekg(static_cast<std::streamoff>(e.body_offset));
  std::string out(e.size, '\0');
  in.read(out.data(), static_cast<std::streamsize>(out.size()));
  if (static_cast<std::uint64_t>(in.gcount()) != e.size) return "<short read>";
  return out;
}

std::vector<std::string> names_in(const fs::path& dir) {
  std::vector<std::string> out;
  if (!fs::exists(dir)) return out;
  for (const auto& e : fs::directory_iterator(dir)) out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

// Every file under the spool with its size and content hash: "changes nothing" means equal.
std::map<std::string, std::string> snapshot(const fs::path& dir) {
  std::map<std::string, std::string> out;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    std::string content;
    if (e.is_regular_file()) {
      std::ifstream in(e.path(), std::ios::binary);
      std::ostringstream s;
      s << in.rdbuf();
      content = s.str();
    }
    out[fs::relative(e.path(), dir).string()] = content;
  }
  return out;
}

bool contains(const std::vector<std::string>& lines, std::string_view needle) {
  return std::any_of(lines.begin(), lines.end(), [&](const std::string& l) { return l.find(needle) != std::string::npos; });
}

// Coroutines spawned in a loop: their state is in parameters, which the frame owns (a temporary
// lambda's captures would be gone by the time the coroutine runs).
asio::awaitable<void> commit_one(Spool& spool, std::string text, int& ok) {
  auto writer = spool.begin();
  writer->write(text);
  Envelope env = make_envelope(writer->id());
  SpoolResult r = co_await spool.commit(std::move(writer), env);
  if (r.ok()) ++ok;
}

asio::awaitable<void> save_one(Spool& spool, QueueId id, MessageState state, int& ok) {
  SpoolResult r = co_await spool.save(id, state);
  if (r.ok()) ++ok;
  else ADD_FAILURE() << r.error;
}

class SpoolTest : public testing::Test {
 protected:
  testsupport::TempDir temp_{"spool-test"};
  asio::io_context io_;
  fs::path dir_ = temp_.path() / "spool";

  std::unique_ptr<Spool> open(SpoolOptions options = {}) {
    options.directory = dir_;
    return std::make_unique<Spool>(io_.get_executor(), std::move(options));
  }

  // Commits `text` through a Writer in `chunk`-sized writes; returns the envelope as filled in.
  Envelope commit(Spool& spool, const std::string& text, std::size_t chunk = 1000, SpoolResult* result = nullptr) {
    auto writer = spool.begin();
    Envelope env = make_envelope(writer->id());
    for (std::size_t at = 0; at < text.size(); at += chunk) writer->write(std::string_view(text).substr(at, chunk));
    SpoolResult r = run(io_, spool.commit(std::move(writer), env));
    if (result != nullptr) *result = r;
    else EXPECT_TRUE(r.ok()) << r.error;
    return env;
  }
};

void expect_same_envelope(const Envelope& got, const Envelope& want) {
  EXPECT_EQ(got.id, want.id);
  EXPECT_EQ(got.sender, want.sender);
  ASSERT_EQ(got.recipients.size(), want.recipients.size());
  for (std::size_t i = 0; i < got.recipients.size(); ++i) {
    EXPECT_EQ(got.recipients[i].address, want.recipients[i].address);
    EXPECT_EQ(got.recipients[i].orcpt, want.recipients[i].orcpt);
    EXPECT_EQ(got.recipients[i].notify, want.recipients[i].notify);
  }
  EXPECT_EQ(got.ret, want.ret);
  EXPECT_EQ(got.envid, want.envid);
  EXPECT_EQ(got.size, want.size);
  EXPECT_EQ(got.eightbit, want.eightbit);
  EXPECT_EQ(got.smtputf8, want.smtputf8);
  EXPECT_EQ(got.arrival, want.arrival);
  EXPECT_EQ(got.body, want.body);
  EXPECT_EQ(got.body_offset, want.body_offset);
}

// ---- round trips ------------------------------------------------------------------------------

TEST_F(SpoolTest, CreatesPrivateLayout) {
  auto spool = open();
  for (const char* sub : {"", "tmp", "msg", "state", "seg"}) {
    const auto perms = fs::status(dir_ / sub).permissions();
    EXPECT_EQ(perms & fs::perms::all, fs::perms::owner_all) << sub;
  }
  EXPECT_TRUE(spool->directory().is_absolute());
}

TEST_F(SpoolTest, CommitThenRecoverReturnsSameEnvelopeAndBytes) {
  const std::string text = message_text(4096);
  Envelope committed;
  {
    auto spool = open();
    committed = commit(*spool, text);
    EXPECT_EQ(committed.size, text.size());
    // Small: in the segment log, after the record header and the envelope record.
    EXPECT_EQ(fs::path(committed.body).parent_path(), dir_ / "seg");
    EXPECT_GT(committed.body_offset, 32u);
    EXPECT_TRUE(names_in(dir_ / "msg").empty());
    EXPECT_EQ(read_body(committed), text);
    EXPECT_EQ(spool->stats().commits, 1u);
  }
  auto spool = open();
  std::vector<std::string> warnings;
  auto queued = spool->recover(&warnings);
  EXPECT_TRUE(warnings.empty()) << warnings.front();
  ASSERT_EQ(queued.size(), 1u);
  expect_same_envelope(queued[0].envelope, committed);
  EXPECT_EQ(read_body(queued[0].envelope), text);
  EXPECT_EQ(queued[0].state, MessageState{std::vector<RecipientState>(2)});
  EXPECT_TRUE(names_in(dir_ / "tmp").empty());
}

TEST_F(SpoolTest, InMemoryCommitForBounces) {
  auto spool = open();
  Envelope env = make_envelope(QueueId::next(), 1);
  env.sender.clear();  // null reverse-path
  std::string text = message_text(1500, 'k');
  const std::string copy = text;
  SpoolResult r = run(io_, spool->commit(std::move(text), env));
  ASSERT_TRUE(r.ok()) << r.error;
  auto loaded = Spool::load(dir_, env.id);
  ASSERT_TRUE(loaded.has_value());
  expect_same_envelope(loaded->envelope, env);
  EXPECT_EQ(read_body(loaded->envelope), copy);
}

TEST_F(SpoolTest, EmptyMessageRoundTrips) {
  auto spool = open();
  Envelope env = commit(*spool, "");
  auto q = spool->recover();
  ASSERT_EQ(q.size(), 1u);
  EXPECT_EQ(q[0].envelope.size, 0u);
  EXPECT_EQ(read_body(q[0].envelope), "");
}

TEST_F(SpoolTest, LargeMessageIsStreamedToDiskWhileItArrives) {
  auto spool = open();
  const std::string text = message_text(3 * 1024 * 1024, 'q');
  auto writer = spool->begin();
  Envelope env = make_envelope(writer->id());
  const std::string_view view(text);
  for (std::size_t at = 0; at < text.size() / 2; at += 4096) writer->write(view.substr(at, 4096));
  // More than the hand-off size was written: the disk thread has (or soon has) a tmp file.
  const fs::path tmp = dir_ / "tmp" / writer->id().str();
  for (int i = 0; i < 200 && !fs::exists(tmp); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  EXPECT_TRUE(fs::exists(tmp));
  EXPECT_FALSE(fs::exists(dir_ / "msg" / writer->id().str()));
  for (std::size_t at = text.size() / 2; at < text.size(); at += 4096) writer->write(view.substr(at, 4096));
  EXPECT_EQ(writer->size(), text.size());
  SpoolResult r = run(io_, spool->commit(std::move(writer), env));
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_FALSE(fs::exists(tmp));
  auto q = spool->recover();
  ASSERT_EQ(q.size(), 1u);
  EXPECT_EQ(q[0].envelope.size, text.size());
  EXPECT_TRUE(read_body(q[0].envelope) == text);
}

TEST_F(SpoolTest, StateSaveLoadRoundTripAndReplacement) {
  auto spool = open();
  Envelope env = commit(*spool, message_text(300));
  MessageState s;
  s.recipients.resize(2);
  s.recipients[0] = RecipientState{RecipientStatus::sent, "2.0.0", "250 ok", "mx.example.net", "smtp; 250 ok", 1'700'000'100, false};
  s.recipients[1] = RecipientState{RecipientStatus::pending, "4.7.5", "Server certificate not verified", "", "", 1'700'000'100, true};
  s.attempts = 3;
  s.next_attempt = 1'700'000'900;
  s.hold = true;
  SpoolResult r = run(io_, spool->save(env.id, s));
  ASSERT_TRUE(r.ok()) << r.error;
  auto loaded = Spool::load(dir_, env.id);
  ASSERT_TRUE(loaded.has_value());
  EXPECT_EQ(loaded->state, s);

  s.recipients[1].status = RecipientStatus::bounced;
  s.hold = false;
  s.forced_expire = true;
  r = run(io_, spool->save(env.id, s));
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(Spool::load(dir_, env.id)->state, s);
  EXPECT_EQ(names_in(dir_ / "state"), std::vector<std::string>{env.id.str()});  // no .tmp left
  EXPECT_EQ(spool->stats().state_writes, 2u);
}

TEST_F(SpoolTest, InvalidUtf8InStateTextIsReplacedNotFatal) {
  auto spool = open();
  Envelope env = commit(*spool, message_text(100));
  MessageState s{std::vector<RecipientState>(2)};
  s.recipients[0].reason = "host said: 550 \xff\xfe bad";
  SpoolResult r = run(io_, spool->save(env.id, s));
  ASSERT_TRUE(r.ok()) << r.error;
  auto loaded = Spool::load(dir_, env.id);
  ASSERT_TRUE(loaded.has_value());
  EXPECT_NE(loaded->state.recipients[0].reason.find("550"), std::string::npos);
}

TEST_F(SpoolTest, InvalidUtf8AddressFailsTheCommitAndQueuesNothing) {
  auto spool = open();
  auto writer = spool->begin();
  writer->write("Subject: x\r\n\r\nbody\r\n");
  Envelope env = make_envelope(writer->id());
  env.recipients[0].address = "\xc3(@example.net";
  SpoolResult r = run(io_, spool->commit(std::move(writer), env));
  EXPECT_FALSE(r.ok());
  EXPECT_TRUE(names_in(dir_ / "msg").empty());
}

TEST_F(SpoolTest, RemoveLeavesNothing) {
  auto spool = open();
  Envelope env = commit(*spool, message_text(5000));
  MessageState s{std::vector<RecipientState>(2)};
  s.attempts = 1;
  ASSERT_TRUE(run(io_, spool->save(env.id, s)).ok());
  SpoolResult r = run(io_, spool->remove(env.id));
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_TRUE(names_in(dir_ / "msg").empty());
  EXPECT_TRUE(names_in(dir_ / "state").empty());
  EXPECT_TRUE(names_in(dir_ / "tmp").empty());
  EXPECT_TRUE(spool->recover().empty());
  EXPECT_EQ(spool->stats().removals, 1u);
}

TEST_F(SpoolTest, SavesIssuedTogetherKeepTheLast) {
  auto spool = open();
  Envelope env = commit(*spool, "x\r\n");
  std::vector<MessageState> states(6, MessageState{std::vector<RecipientState>(2)});
  for (std::size_t i = 0; i < states.size(); ++i) states[i].attempts = static_cast<std::uint32_t>(i + 1);
  int ok = 0;
  // Spawned together, they usually land in one round and share state/QID.tmp.
  for (const auto& s : states) asio::co_spawn(io_, save_one(*spool, env.id, s, ok), asio::detached);
  io_.restart();  // commit() above ran io_ to completion
  io_.run();
  EXPECT_EQ(ok, 6);
  EXPECT_EQ(Spool::load(dir_, env.id)->state.attempts, 6u);
  EXPECT_EQ(names_in(dir_ / "state"), std::vector<std::string>{env.id.str()});
}

TEST_F(SpoolTest, RemovingAMissingMessageSucceeds) {
  auto spool = open();
  SpoolResult r = run(io_, spool->remove(*QueueId::parse("00000000BEEF")));
  EXPECT_TRUE(r.ok()) << r.error;
}

TEST_F(SpoolTest, RecoverReturnsOldestFirst) {
  auto spool = open();
  std::vector<QueueId> ids;
  for (int i = 0; i < 3; ++i) {
    auto writer = spool->begin();
    Envelope env = make_envelope(writer->id());
    env.arrival = Clock::time_point(std::chrono::seconds(1'700'000'000 - i * 10));  // later ids arrive earlier
    writer->write("x");
    ASSERT_TRUE(run(io_, spool->commit(std::move(writer), env)).ok());
    ids.push_back(env.id);
  }
  auto q = spool->recover();
  ASSERT_EQ(q.size(), 3u);
  EXPECT_EQ(q[0].envelope.id, ids[2]);
  EXPECT_EQ(q[2].envelope.id, ids[0]);
}

TEST_F(SpoolTest, AbandonedWriterLeavesNothing) {
  auto spool = open();
  {
    auto writer = spool->begin();
    writer->write(message_text(600 * 1024));  // handed to the disk thread: a tmp file exists
  }
  spool.reset();  // drains the disk queue
  EXPECT_TRUE(names_in(dir_ / "tmp").empty());
  EXPECT_TRUE(names_in(dir_ / "msg").empty());
}

TEST_F(SpoolTest, EnvelopeOfAnotherIdIsRefused) {
  auto spool = open();
  auto writer = spool->begin();
  writer->write("x");
  Envelope env = make_envelope(QueueId::next());
  SpoolResult r = run(io_, spool->commit(std::move(writer), env));
  EXPECT_FALSE(r.ok());
  EXPECT_TRUE(names_in(dir_ / "msg").empty());
}

// ---- recovery ---------------------------------------------------------------------------------

TEST_F(SpoolTest, RecoverDeletesTmpLeftovers) {
  { auto spool = open(); }
  std::ofstream(dir_ / "tmp" / "0123456789AB") << "half a message";
  auto spool = open();
  std::vector<std::string> warnings;
  EXPECT_TRUE(spool->recover(&warnings).empty());
  EXPECT_TRUE(names_in(dir_ / "tmp").empty());
  EXPECT_TRUE(contains(warnings, "0123456789AB"));
}

TEST_F(SpoolTest, RecoverDiscardsDamagedMessagesAndKeepsGoodOnes) {
  const std::string text = message_text(300 * 1024);  // streamed: each in its own msg/ file
  std::vector<Envelope> envs;
  {
    auto spool = open();
    for (int i = 0; i < 8; ++i) envs.push_back(commit(*spool, text));
  }
  auto path = [&](int i) { return dir_ / "msg" / envs[static_cast<std::size_t>(i)].id.str(); };
  const auto full = fs::file_size(path(0));
  const auto message_end = text.size();
  fs::resize_file(path(0), message_end / 2);           // cut inside the message
  fs::resize_file(path(1), message_end + 5);           // cut inside the envelope record
  fs::resize_file(path(2), full - 10);                 // cut inside the trailer
  {                                                     // flip a checksum byte
    std::fstream f(path(3), std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(static_cast<std::streamoff>(full - 32 + 12));
    const char c = static_cast<char>(f.get());
    f.seekp(static_cast<std::streamoff>(full - 32 + 12));
    f.put(static_cast<char>(c ^ 0x01));
  }
  fs::resize_file(path(4), 0);                          // zero length
  {                                                     // flip a byte of the envelope record
    std::fstream f(path(5), std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(message_end + 3));
    f.put('#');
  }
  std::ofstream(dir_ / "msg" / "not-a-queue-id") << "junk";

  auto spool = open();
  std::vector<std::string> warnings;
  auto q = spool->recover(&warnings);
  ASSERT_EQ(q.size(), 2u);
  EXPECT_EQ(q[0].envelope.id, envs[6].id);
  EXPECT_EQ(q[1].envelope.id, envs[7].id);
  EXPECT_EQ(read_body(q[0].envelope), text);
  for (int i = 0; i < 6; ++i) {
    EXPECT_TRUE(contains(warnings, envs[static_cast<std::size_t>(i)].id.str())) << "no warning for damaged file " << i;
    EXPECT_FALSE(fs::exists(path(i))) << i;
  }
  EXPECT_TRUE(contains(warnings, "not-a-queue-id"));
  EXPECT_TRUE(contains(warnings, "checksum"));
  EXPECT_EQ(names_in(dir_ / "msg"), (std::vector<std::string>{envs[6].id.str(), envs[7].id.str()}));
}

TEST_F(SpoolTest, RecoverRemovesOrphanStateFiles) {
  auto spool = open();
  Envelope env = commit(*spool, "kept\r\n");
  std::ofstream(dir_ / "state" / "0000000000AA") << "{}";
  std::ofstream(dir_ / "state" / (env.id.str() + ".tmp")) << "{";
  std::vector<std::string> warnings;
  auto q = spool->recover(&warnings);
  EXPECT_EQ(q.size(), 1u);
  EXPECT_TRUE(contains(warnings, "0000000000AA"));
  EXPECT_TRUE(names_in(dir_ / "state").empty());
}

TEST_F(SpoolTest, CorruptStateFileGivesInitialStateWithWarning) {
  auto spool = open();
  Envelope env = commit(*spool, "text\r\n");
  std::ofstream(dir_ / "state" / env.id.str()) << "{\"recipients\": [ {\"status\": \"sen";
  std::vector<std::string> warnings;
  auto q = spool->recover(&warnings);
  ASSERT_EQ(q.size(), 1u);
  EXPECT_EQ(q[0].state, MessageState{std::vector<RecipientState>(2)});
  EXPECT_TRUE(contains(warnings, "corrupt state"));

  // A well-formed state whose recipient count does not fit the envelope is just as unusable.
  MessageState wrong{std::vector<RecipientState>(5)};
  ASSERT_TRUE(run(io_, spool->save(env.id, wrong)).ok());
  warnings.clear();
  q = spool->recover(&warnings);
  ASSERT_EQ(q.size(), 1u);
  EXPECT_EQ(q[0].state.recipients.size(), 2u);
  EXPECT_FALSE(warnings.empty());
}

TEST_F(SpoolTest, ScanChangesNothingOnDisk) {
  {
    auto spool = open();
    Envelope good = commit(*spool, message_text(3000));
    Envelope bad = commit(*spool, message_text(300 * 1024));
    fs::resize_file(dir_ / "msg" / bad.id.str(), 100);
    Envelope torn = commit(*spool, message_text(3000));
    fs::resize_file(torn.body, torn.body_offset + 10);  // the log's last record cut short
  }
  std::ofstream(dir_ / "tmp" / "0123456789AB") << "partial";
  std::ofstream(dir_ / "state" / "0000000000AA") << "{}";
  std::ofstream(dir_ / "state" / "0000000000BB") << "garbage";
  const auto before = snapshot(dir_);
  std::vector<std::string> warnings;
  auto q = Spool::scan(dir_, &warnings);
  EXPECT_EQ(q.size(), 1u);
  EXPECT_FALSE(warnings.empty());
  EXPECT_EQ(snapshot(dir_), before);
  EXPECT_FALSE(Spool::load(dir_, *QueueId::parse("0000000000AA")).has_value());
  EXPECT_EQ(snapshot(dir_), before);
}

TEST_F(SpoolTest, ScanOfMissingDirectoryWarns) {
  std::vector<std::string> warnings;
  EXPECT_TRUE(Spool::scan(temp_.path() / "nothing-here", &warnings).empty());
  EXPECT_FALSE(warnings.empty());
}

// ---- the segment log ---------------------------------------------------------------------------

TEST_F(SpoolTest, ADamagedLogRecordIsSkippedAndTheRestRecovered) {
  std::vector<Envelope> envs;
  {
    auto spool = open();
    for (int i = 0; i < 3; ++i) envs.push_back(commit(*spool, message_text(2000, static_cast<char>('a' + i))));
  }
  ASSERT_EQ(envs[0].body, envs[2].body);  // one segment
  {
    std::fstream f(envs[1].body, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(envs[1].body_offset + 1000));
    f.put('#');  // one byte of the middle message: its checksum no longer matches
  }
  auto spool = open();
  std::vector<std::string> warnings;
  auto q = spool->recover(&warnings);
  ASSERT_EQ(q.size(), 2u);
  EXPECT_EQ(q[0].envelope.id, envs[0].id);
  EXPECT_EQ(q[1].envelope.id, envs[2].id);
  EXPECT_EQ(read_body(q[1].envelope), message_text(2000, 'c'));
  EXPECT_TRUE(contains(warnings, "damaged record")) << (warnings.empty() ? "" : warnings.front());
  // New records go to a new segment, never after a tail that may be torn.
  Envelope next = commit(*spool, "after\r\n");
  EXPECT_NE(next.body, envs[0].body);
}

TEST_F(SpoolTest, ASaveAfterAnAttemptMovesTheMessageOutOfTheLog) {
  auto spool = open();
  const std::string text = message_text(5000);
  Envelope env = commit(*spool, text);
  const fs::path segment = env.body;
  MessageState s{std::vector<RecipientState>(2)};
  s.attempts = 1;
  // Without relocate (an operator's hold while an attempt may read it): it stays.
  SpoolResult r = run(io_, spool->save(env.id, s));
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_TRUE(r.body.empty());
  EXPECT_TRUE(names_in(dir_ / "msg").empty());
  r = run(io_, spool->save(env.id, s, true));
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(fs::path(r.body), dir_ / "msg" / env.id.str());
  EXPECT_EQ(r.body_offset, 0u);
  env.body = r.body;
  env.body_offset = r.body_offset;
  EXPECT_EQ(read_body(env), text);
  // A second relocating save finds nothing to move.
  s.attempts = 2;
  r = run(io_, spool->save(env.id, s, true));
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_TRUE(r.body.empty());
  spool.reset();  // writes the done record for the log copy

  spool = open();
  std::vector<std::string> warnings;
  auto q = spool->recover(&warnings);
  EXPECT_TRUE(warnings.empty()) << warnings.front();
  ASSERT_EQ(q.size(), 1u);
  EXPECT_EQ(fs::path(q[0].envelope.body), dir_ / "msg" / env.id.str());
  EXPECT_EQ(q[0].state.attempts, 2u);
  ASSERT_TRUE(run(io_, spool->remove(env.id)).ok());
  spool.reset();
  spool = open();
  EXPECT_TRUE(spool->recover().empty());
  EXPECT_TRUE(fs::exists(segment) || names_in(dir_ / "seg").empty());
}

TEST_F(SpoolTest, AMovedMessageStaysInMsgUntilItsLogCopyIsRetired) {
  // A message moved out of the log, whose done record cannot be written (the log fails from
  // then on), must not be removed from msg/: after a crash its log copy would come back
  // without its state file, and go to every recipient again.
  const fs::path kept = dir_.parent_path() / (dir_.filename().string() + "-kept");
  fs::remove_all(kept);
  SpoolOptions options;
  options.segment_bytes = 1;  // every round starts a new segment: one that fails to be made
  std::string moved_id;
  options.on_disk_op = [&](std::string_view op, const fs::path& path) {
    if (op != "rename" || path.parent_path().filename() != "msg" || path.filename() != moved_id) return;
    // The move is on its way: take the log away (keeping its files to put back later).
    fs::create_directories(kept);
    for (const auto& e : fs::directory_iterator(dir_ / "seg")) fs::create_hard_link(e.path(), kept / e.path().filename());
    fs::remove_all(dir_ / "seg");
  };
  auto spool = open(options);
  const std::string text = message_text(2000);
  Envelope env = commit(*spool, text);
  moved_id = env.id.str();
  MessageState s{std::vector<RecipientState>(2)};
  s.attempts = 1;
  SpoolResult r = run(io_, spool->save(env.id, s, true));
  ASSERT_TRUE(r.ok()) << r.error;
  ASSERT_EQ(fs::path(r.body), dir_ / "msg" / env.id.str());
  r = run(io_, spool->remove(env.id));
  EXPECT_FALSE(r.ok()) << "removed from msg/ while its log copy is still live";
  EXPECT_TRUE(fs::exists(dir_ / "msg" / env.id.str()));
  spool.reset();
  // The crash: the log as it was on disk comes back.
  fs::remove_all(dir_ / "seg");
  fs::rename(kept, dir_ / "seg");
  spool = open();
  auto q = spool->recover();
  ASSERT_EQ(q.size(), 1u);
  EXPECT_EQ(q[0].state.attempts, 1u) << "the message came back without its state";
  EXPECT_EQ(fs::path(q[0].envelope.body), dir_ / "msg" / env.id.str());
}

TEST_F(SpoolTest, WhenACrashLeftBothCopiesMsgWinsAndTheLogCopyNeverComesBack) {
  // The window between a move's rename into msg/ and the done record for the log copy: build
  // it on disk by taking a moved file from a second spool that holds the same message.
  const std::string text = message_text(3000);
  Envelope env = make_envelope(QueueId::next(), 1);
  {
    auto spool = open();
    Envelope e = env;
    ASSERT_TRUE(run(io_, spool->commit(text, e)).ok());
  }
  const fs::path other = temp_.path() / "other";
  {
    SpoolOptions o;
    o.directory = other;
    Spool spool(io_.get_executor(), o);
    Envelope e = env;
    ASSERT_TRUE(run(io_, spool.commit(text, e)).ok());
    ASSERT_TRUE(run(io_, spool.save(env.id, MessageState{std::vector<RecipientState>(1)}, true)).ok());
  }
  fs::copy_file(other / "msg" / env.id.str(), dir_ / "msg" / env.id.str());
  {
    auto spool = open();
    auto q = spool->recover();
    ASSERT_EQ(q.size(), 1u);
    EXPECT_EQ(fs::path(q[0].envelope.body), dir_ / "msg" / env.id.str());
    // Delivered: only msg/ goes. The log copy was retired at recovery, so it stays gone.
    ASSERT_TRUE(run(io_, spool->remove(env.id)).ok());
  }
  auto spool = open();
  EXPECT_TRUE(spool->recover().empty());
}

TEST_F(SpoolTest, SegmentsGoOnceEverythingInThemIsGoneOldestFirst) {
  auto spool = open();
  // 200 KiB messages (below the hand-off size): 180 of them fill two 16 MiB segments and start a third.
  const std::string text = message_text(200 * 1024);
  std::map<std::string, std::vector<QueueId>> by_segment;
  for (int i = 0; i < 180; ++i) {
    Envelope e = commit(*spool, text, 256 * 1024);
    by_segment[e.body].push_back(e.id);
  }
  ASSERT_GE(by_segment.size(), 3u);
  auto it = by_segment.begin();
  const auto& [first, first_ids] = *it++;
  const auto& [second, second_ids] = *it;
  // The second segment emptied first stays while the first holds a message: its done records
  // are what keeps the first one's removed messages gone.
  for (const auto& id : second_ids) ASSERT_TRUE(run(io_, spool->remove(id)).ok());
  for (std::size_t i = 1; i < first_ids.size(); ++i) ASSERT_TRUE(run(io_, spool->remove(first_ids[i])).ok());
  EXPECT_TRUE(fs::exists(first));
  EXPECT_TRUE(fs::exists(second));
  // The first one's last message goes: both go, oldest first.
  ASSERT_TRUE(run(io_, spool->remove(first_ids[0])).ok());
  EXPECT_FALSE(fs::exists(first));
  EXPECT_FALSE(fs::exists(second));
  spool.reset();
  spool = open();
  auto q = spool->recover();
  std::size_t rest = 0;
  for (const auto& [seg, ids] : by_segment) rest += seg == first || seg == second ? 0 : ids.size();
  EXPECT_EQ(q.size(), rest);
}

// ---- group commit, ordering ------------------------------------------------------------------

TEST_F(SpoolTest, ConcurrentCommitsShareFlushRounds) {
  auto spool = open();
  constexpr int kMessages = 200;
  int ok = 0;
  const std::string text = message_text(4096);
  for (int i = 0; i < kMessages; ++i) asio::co_spawn(io_, commit_one(*spool, text, ok), asio::detached);
  io_.run();
  EXPECT_EQ(ok, kMessages);
  const auto stats = spool->stats();
  EXPECT_EQ(stats.commits, static_cast<std::uint64_t>(kMessages));
  EXPECT_LT(stats.flush_rounds, stats.commits);
  EXPECT_GE(stats.flush_rounds, 1u);
  EXPECT_EQ(spool->recover().size(), static_cast<std::size_t>(kMessages));
}

TEST_F(SpoolTest, MaxBatchBoundsARound) {
  SpoolOptions options;
  options.max_batch = 4;
  auto spool = open(options);
  const std::string text = message_text(100);
  int ok = 0;
  for (int i = 0; i < 20; ++i) asio::co_spawn(io_, commit_one(*spool, text, ok), asio::detached);
  io_.run();
  EXPECT_EQ(ok, 20);
  EXPECT_EQ(spool->stats().commits, 20u);
  EXPECT_GE(spool->stats().flush_rounds, 5u);
}

struct OpLog {
  std::mutex mutex;
  std::vector<std::string> events;
  void add(std::string e) {
    std::lock_guard lock(mutex);
    events.push_back(std::move(e));
  }
  std::ptrdiff_t index(std::string_view e) {
    std::lock_guard lock(mutex);
    auto it = std::find(events.begin(), events.end(), e);
    return it == events.end() ? -1 : it - events.begin();
  }
};

TEST_F(SpoolTest, CommitToTheLogFlushesTheSegmentAndItsNewNameThenCompletes) {
  OpLog log;
  SpoolOptions options;
  options.on_disk_op = [&](std::string_view op, const fs::path& p) { log.add(std::string(op) + " " + p.string()); };
  auto spool = open(options);
  auto commit_logged = [&](std::string text) -> asio::awaitable<Envelope> {
    auto writer = spool->begin();
    writer->write(text);
    Envelope env = make_envelope(writer->id());
    SpoolResult r = co_await spool->commit(std::move(writer), env);
    EXPECT_TRUE(r.ok()) << r.error;
    log.add("completed");
    co_return env;
  };
  Envelope first = run(io_, commit_logged("Subject: order\r\n\r\nx\r\n"));
  const fs::path d = spool->directory();
  const fs::path segment = first.body;
  EXPECT_EQ(segment.parent_path(), d / "seg");
  // The first record makes a segment: its data, then its name, are durable before the 250.
  EXPECT_EQ(log.events, (std::vector<std::string>{"fdatasync " + segment.string(), "fsync " + (d / "seg").string(), "completed"}));
  // Later ones: one flush of the segment, no names, no directories.
  log.events.clear();
  Envelope second = run(io_, commit_logged("Subject: again\r\n\r\ny\r\n"));
  EXPECT_EQ(second.body, first.body);
  EXPECT_EQ(log.events, (std::vector<std::string>{"fdatasync " + segment.string(), "completed"}));
  // A removal is a done record, durable before it completes; nothing is unlinked.
  log.events.clear();
  auto remove = [&]() -> asio::awaitable<SpoolResult> {
    SpoolResult r = co_await spool->remove(second.id);
    log.add("removed");
    co_return r;
  };
  ASSERT_TRUE(run(io_, remove()).ok());
  EXPECT_EQ(log.events, (std::vector<std::string>{"fdatasync " + segment.string(), "removed"}));
}

TEST_F(SpoolTest, CommitFlushesFileThenRenamesThenFlushesDirectoryThenCompletes) {
  OpLog log;
  SpoolOptions options;
  options.on_disk_op = [&](std::string_view op, const fs::path& p) { log.add(std::string(op) + " " + p.string()); };
  auto spool = open(options);
  auto writer = spool->begin();
  const std::string id = writer->id().str();
  writer->write(message_text(300 * 1024));  // streamed to tmp/: the message gets its own file
  Envelope env = make_envelope(writer->id());
  auto task = [&]() -> asio::awaitable<SpoolResult> {
    SpoolResult r = co_await spool->commit(std::move(writer), env);
    log.add("completed");
    co_return r;
  };
  ASSERT_TRUE(run(io_, task()).ok());
  const fs::path d = spool->directory();
  const auto sync = log.index("fdatasync " + (d / "tmp" / id).string());
  const auto rename = log.index("rename " + (d / "msg" / id).string());
  const auto dir_sync = log.index("fsync " + (d / "msg").string());
  const auto done = log.index("completed");
  ASSERT_GE(sync, 0);
  EXPECT_LT(sync, rename);
  EXPECT_LT(rename, dir_sync);
  EXPECT_LT(dir_sync, done);
}

TEST_F(SpoolTest, SaveAndRemoveFollowTheDurabilityOrder) {
  OpLog log;
  SpoolOptions options;
  options.on_disk_op = [&](std::string_view op, const fs::path& p) { log.add(std::string(op) + " " + p.string()); };
  auto spool = open(options);
  Envelope env = commit(*spool, message_text(300 * 1024));  // its own file under msg/
  const std::string id = env.id.str();
  const fs::path d = spool->directory();
  auto save = [&]() -> asio::awaitable<SpoolResult> {
    MessageState s{std::vector<RecipientState>(2)};
    SpoolResult r = co_await spool->save(env.id, s);
    log.add("saved");
    co_return r;
  };
  ASSERT_TRUE(run(io_, save()).ok());
  EXPECT_LT(log.index("fdatasync " + (d / "state" / (id + ".tmp")).string()), log.index("rename " + (d / "state" / id).string()));
  EXPECT_LT(log.index("rename " + (d / "state" / id).string()), log.index("fsync " + (d / "state").string()));
  EXPECT_LT(log.index("fsync " + (d / "state").string()), log.index("saved"));

  log.events.clear();
  auto remove = [&]() -> asio::awaitable<SpoolResult> {
    SpoolResult r = co_await spool->remove(env.id);
    log.add("removed");
    co_return r;
  };
  ASSERT_TRUE(run(io_, remove()).ok());
  const std::vector<std::string> want = {"unlink " + (d / "msg" / id).string(), "fsync " + (d / "msg").string(),
                                         "unlink " + (d / "state" / id).string(), "fsync " + (d / "state").string(), "removed"};
  EXPECT_EQ(log.events, want);
}

// ---- errors, space ---------------------------------------------------------------------------

// Root ignores permission bits, so errors are provoked by removing the directories the spool
// holds open: creating or renaming into a deleted directory fails with ENOENT for everyone.
TEST_F(SpoolTest, CommitFailsCleanlyWhenTmpCannotBeWritten) {
  auto spool = open();
  fs::remove_all(dir_ / "tmp");
  SpoolResult r;
  commit(*spool, message_text(300 * 1024), 8192, &r);
  EXPECT_FALSE(r.ok());
  EXPECT_NE(r.error.find("tmp"), std::string::npos) << r.error;
  EXPECT_TRUE(names_in(dir_ / "msg").empty());
  EXPECT_EQ(spool->stats().commits, 0u);
}

TEST_F(SpoolTest, CommitFailsCleanlyWhenRenameFails) {
  auto spool = open();
  fs::remove_all(dir_ / "msg");
  SpoolResult r;
  commit(*spool, message_text(400 * 1024), 8192, &r);  // streamed, so the tmp file existed
  EXPECT_FALSE(r.ok());
  EXPECT_NE(r.error.find("rename"), std::string::npos) << r.error;
  EXPECT_TRUE(names_in(dir_ / "tmp").empty());
  fs::create_directory(dir_ / "msg");
  EXPECT_TRUE(Spool::scan(dir_).empty());
}

TEST_F(SpoolTest, CommitFailsCleanlyWhenNoSegmentCanBeMade) {
  auto spool = open();
  fs::remove_all(dir_ / "seg");
  SpoolResult r;
  commit(*spool, message_text(1000), 1000, &r);
  EXPECT_FALSE(r.ok());
  EXPECT_NE(r.error.find("seg"), std::string::npos) << r.error;
  EXPECT_EQ(spool->stats().commits, 0u);
  // The next one fails the same way (no spinning, no hang), and large messages still go.
  commit(*spool, message_text(1000), 1000, &r);
  EXPECT_FALSE(r.ok());
  Envelope env = commit(*spool, message_text(300 * 1024));
  EXPECT_EQ(fs::path(env.body).parent_path(), dir_ / "msg");
}

TEST_F(SpoolTest, SaveFailureIsReported) {
  auto spool = open();
  Envelope env = commit(*spool, "x");
  fs::remove_all(dir_ / "state");
  MessageState s{std::vector<RecipientState>(2)};
  SpoolResult r = run(io_, spool->save(env.id, s));
  EXPECT_FALSE(r.ok());
}

TEST_F(SpoolTest, HasSpaceHonoursMinFreeSpace) {
  auto roomy = open();
  EXPECT_TRUE(roomy->has_space(1024));
  EXPECT_FALSE(roomy->has_space(std::numeric_limits<std::uint64_t>::max()));
  roomy.reset();
  SpoolOptions options;
  options.min_free_space = std::uint64_t{1} << 62;  // 4 EiB
  auto full = open(options);
  EXPECT_FALSE(full->has_space(0));
}

TEST(SpoolRecipientStatus, NamesRoundTrip) {
  for (auto s : {RecipientStatus::pending, RecipientStatus::sent, RecipientStatus::bounced}) {
    EXPECT_EQ(parse_recipient_status(to_string(s)), s);
  }
  EXPECT_EQ(to_string(RecipientStatus::bounced), "bounced");
  EXPECT_FALSE(parse_recipient_status("deferred").has_value());
}

}  // namespace
}  // namespace danerelay::relay
