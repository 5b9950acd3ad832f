// The errors of connecting to a store service, shared by the blocking
// connect (client.cpp) and the projection host's asynchronous one
// (remote_source.cpp), so that both say the same (private to
// varve::remote).
#pragma once

#include <caf/fwd.hpp>

#include <cstdint>
#include <string>

#include <varve/storage/error.hpp>

namespace varve::remote::detail {

/// The middleman could not reach a service at `where` (host:port):
/// errc::invalid_argument when what is published there has another
/// interface (another protocol version), else errc::unavailable.
error connect_failed(caf::actor_system& sys, const std::string& where, const caf::error& e,
                     std::uint32_t protocol);

/// The service at `where` offers another interface than this build's.
error interface_mismatch(const std::string& where, std::uint32_t protocol);

/// The handshake itself failed (`e`, from error_from_remote).
error handshake_failed(const std::string& where, const error& e);

/// The service answered the handshake with another protocol version.
error version_mismatch(const std::string& where, std::uint32_t ours, std::uint32_t theirs);

}  // namespace varve::remote::detail
