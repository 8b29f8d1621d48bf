// relay/core/exit_codes.hpp — the exit statuses every subcommand and the daemon share: 0 success,
// 1 runtime failure (for `check`/`probe`: the mail would defer or bounce, the probe failed),
// 2 configuration error (systemd's RestartPreventExitStatus=2 stops restart loops on a bad
// config), 3 the DNSSEC self-test failed (`check`: the answers cannot be trusted, so monitoring
// can tell a broken resolver from a broken destination), 64 usage error (sysexits.h EX_USAGE).
#pragma once

namespace danerelay::relay {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;
inline constexpr int kExitConfig = 2;
inline constexpr int kExitSelfTest = 3;
inline constexpr int kExitUsage = 64;

}  // namespace danerelay::relay
