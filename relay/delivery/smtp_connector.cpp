// relay/delivery/smtp_connector.cpp — see smtp_connector.hpp.
#include "relay/delivery/smtp_connector.hpp"

#include <fmt/format.h>

#include "tls/peer_report.hpp"

#include <unistd.h>

#include <algorithm>

namespace danerelay::relay {

namespace asio = boost::asio;

namespace {

std::string notify_text(std::uint8_t notify) {
  if (notify == notify_unset) return {};
  if (notify & notify_never) return "NEVER";
  std::string out;
  for (auto [flag, word] : {std::pair{notify_success, "SUCCESS"}, std::pair{notify_failure, "FAILURE"}, std::pair{notify_delay, "DELAY"}}) {
    if (notify & flag) out += (out.empty() ? "" : ",") + std::string(word);
  }
  return out;
}

smtp::MailSpec mail_spec(const HostAttempt& a) {
  const Envelope& e = *a.envelope;
  smtp::MailSpec m;
  m.sender = e.sender;
  for (std::size_t i : a.recipients) {
    const Recipient& r = e.recipients[i];
    m.recipients.push_back(smtp::RcptSpec{r.address, notify_text(r.notify), r.orcpt});
  }
  m.ret = e.ret == Ret::full ? "FULL" : e.ret == Ret::headers ? "HDRS" : "";
  m.envid = e.envid;
  m.size = e.size;
  m.eightbit = e.eightbit;
  m.smtputf8 = e.smtputf8;
  return m;
}

TlsSummary summary_of(const smtp::ClientSession& s) {
  TlsSummary t;
  t.feature = s.policy().tls_feature;
  if (const auto& rep = s.tls_report(); rep && rep->established) {
    t.trust = std::string(tls::to_string(rep->trust));
    t.protocol = rep->protocol;
    t.cipher = rep->cipher;
    if (rep->matched) {
      t.matched = rep->matched->to_string();
      t.depth = rep->match_depth;
    }
  }
  return t;
}

}  // namespace

ConnectorSettings connector_settings(const config::Config& config) {
  ConnectorSettings s;
  s.helo_name = config.server.hostname;
  if (s.helo_name.empty()) {
    char name[256] = {};
    if (gethostname(name, sizeof name - 1) == 0) s.helo_name = name;
    if (s.helo_name.empty()) s.helo_name = "localhost";
  }
  const auto& d = config.delivery;
  s.timeouts.connect = d.connect_timeout;
  s.timeouts.greeting = d.greeting_timeout;
  s.timeouts.ehlo = d.helo_timeout;
  s.timeouts.starttls = d.starttls_timeout;
  s.timeouts.mail = d.mail_timeout;
  s.timeouts.rcpt = d.rcpt_timeout;
  s.timeouts.data_init = d.data_init_timeout;
  s.timeouts.data_block = d.data_block_timeout;
  s.timeouts.data_done = d.data_done_timeout;
  s.timeouts.quit = d.quit_timeout;
  // The loader has validated both addresses.
  if (!d.source_address_v4.empty()) s.source_v4 = asio::ip::make_address(d.source_address_v4);
  if (!d.source_address_v6.empty()) s.source_v6 = asio::ip::make_address(d.source_address_v6);
  return s;
}

CacheKey cache_key(const HostAttempt& a) {
  CacheKey key{a.plan->domain,
               a.host->name,
               a.address.to_string(),
               a.port,
               a.policy.base_domain,
               std::string(tls::to_string(a.policy.requirement)) + "/" + std::string(config::to_string(a.policy.level)),
               a.policy.reference_ids,
               {},
               a.policy.sni,
               a.policy.mx_insecure};
  for (const dns::TlsaRecord& r : a.policy.usable) {
    key.usable_tlsa.push_back(std::to_string(r.usage) + " " + std::to_string(r.selector) + " " +
                              std::to_string(r.matching_type) + " " + dns::to_hex(r.data));
  }
  std::sort(key.usable_tlsa.begin(), key.usable_tlsa.end());  // an RRset is a set
  return key;
}

Connector smtp_connector(asio::any_io_executor executor, asio::ssl::context& tls_context, ConnectorSettings settings,
                         LogSink log, ConnectionCache* cache) {
  // Not owned: the caller keeps the context alive.
  std::shared_ptr<asio::ssl::context> context(&tls_context, [](asio::ssl::context*) {});
  return smtp_connector(std::move(executor), std::make_shared<const LiveConnector>(ConnectorRuntime{context, std::move(settings)}),
                        std::move(log), cache);
}

Connector smtp_connector(asio::any_io_executor executor, std::shared_ptr<const LiveConnector> live, LogSink log,
                         ConnectionCache* cache) {
  Connector connect = [executor, live, log, cache](HostAttempt a) -> asio::awaitable<SessionResult> {
    // The runtime in force when the attempt starts, kept to its end.
    const std::shared_ptr<const ConnectorRuntime> runtime = live->get();
    const ConnectorSettings& settings = runtime->settings;
    asio::ssl::context& tls_context = *runtime->tls;
    const std::string namaddr = tls::format_namaddr(a.host->name, a.address.to_string(), a.port);
    CacheKey key = cache_key(a);
    std::unique_ptr<smtp::ClientSession> session;
    if (cache != nullptr && !a.plaintext_retry) session = cache->take(key);
    SessionResult result;
    bool reused = session != nullptr;
    smtp::MailSpec mail = mail_spec(a);
    smtp::TransactionResult t;

    for (;;) {
      if (session) {
        // Reused: same domain, host, address, TLSA records, requirement and level (connection_cache.hpp).
        if (const auto& rep = session->tls_report(); rep && rep->established) log(tls::summary_line(*rep, namaddr, true));
        result.tls = summary_of(*session);
      } else {
        smtp::SessionOptions options;
        options.helo_name = settings.helo_name;
        options.host_name = a.host->name;
        const auto address = asio::ip::make_address(a.address.to_string());
        options.peer = asio::ip::tcp::endpoint(address, a.port);
        options.source = address.is_v6() ? settings.source_v6 : settings.source_v4;
        options.timeouts = settings.timeouts;
        session = std::make_unique<smtp::ClientSession>(executor, tls_context, a.policy, options);
        std::optional<smtp::HostFailure> failure = co_await session->open();

        // Postfix's TLS lines, before the delivery lines they belong to.
        if (const auto& rep = session->tls_report()) {
          for (const std::string& line :
               {tls::dane_match_line(*rep, namaddr), tls::summary_line(*rep, namaddr), tls::verify_failure_line(*rep, namaddr)}) {
            if (!line.empty()) log(line);
          }
        }
        result.tls = summary_of(*session);
        result.connection_setup = session->setup_time();
        if (settings.on_connection) {
          ConnectionReport report;
          report.tls_attempted = session->tls_report().has_value();
          report.tls_established = report.tls_attempted && session->tls_report()->established;
          report.trust = report.tls_established ? std::string(tls::to_string(session->tls_report()->trust)) : std::string();
          if (failure) report.failure = failure->kind;
          report.handshake = session->handshake_time();
          settings.on_connection(report);
        }
        if (failure) {
          result.failure = std::move(failure);
          session->close();
          co_return result;
        }
      }

      smtp::BodySource body = smtp::BodySource::from_file(a.envelope->body, a.envelope->body_offset, a.envelope->size);
      t = co_await session->send(mail, body);
      const bool any_bounced = std::any_of(t.recipients.begin(), t.recipients.end(), [](const smtp::RecipientOutcome& o) {
        return o.disposition == smtp::Disposition::bounced;
      });
      if (reused && t.failure && !t.body_sent && !any_bounced) {
        // A cached connection the peer closed (or answered with 421) while it sat idle; the
        // cache's idle check cannot see a close that races the take. Nothing was delivered on
        // it: retry once on a fresh connection instead of deferring every recipient.
        log(fmt::format("{}: cached connection to {} failed before the message was sent ({}); retrying on a new connection",
                        a.envelope->id.str(), namaddr, t.failure->text));
        session->close();
        session.reset();
        reused = false;
        continue;
      }
      if (!t.mail_sent && t.failure && !any_bounced) {
        // The session broke before MAIL: nothing was attempted here, so the next host may be.
        result.failure = std::move(t.failure);
        session->close();
        co_return result;
      }
      break;
    }
    result.transaction = true;
    result.failure = std::move(t.failure);
    result.recipients = std::move(t.recipients);
    result.connection_use = std::max(1, t.connection_use);
    result.connection_setup = t.setup;
    result.transmission = t.transmission;
    if (cache != nullptr && session->reusable()) {
      cache->put(std::move(key), std::move(session));
    } else if (session->reusable()) {
      co_await session->quit();
    } else {
      session->close();
    }
    co_return result;
  };
  // The own endpoints are the listeners', which a reload does not change.
  return refuse_own_endpoints(std::move(connect), live->get()->settings.own_endpoints);
}

}  // namespace danerelay::relay
