// The store service: publishes a store's storage actor to other processes
// through CAF's middleman (tools/serve/varve_serve is the program).
#pragma once

#include <caf/fwd.hpp>

#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include <varve/storage/error.hpp>

#include "varve/remote/protocol.hpp"
#include "varve/remote/type_ids.hpp"

namespace varve::remote {

/// Loads CAF's middleman and registers the message types and the error
/// category of Varve, its projections and varve::remote. Call it on every
/// configuration of a process that serves or connects (varve::configure
/// already registers the first two blocks; registering again is harmless).
void configure_remote(caf::actor_system_config& cfg);

/// Aggregate registries the service hands out by type name, e.g.
/// {{"account", caf::actor_cast<caf::actor>(spawn_registry<account>(...))}}.
using aggregate_registries = std::map<std::string, caf::actor>;

/// Spawns the service actor in front of `storage`; reads go to `store`;
/// command dispatch goes to `aggregates` (none: clients asking for a
/// registry get errc::not_found). Stop it with caf::anon_send_exit (the
/// storage actor and the registries are not stopped).
service_actor spawn_service(caf::actor_system& sys, std::shared_ptr<const event_store> store,
                            storage_actor storage, aggregate_registries aggregates = {});

/// Publishes `service` on host:port (port 0: any free port) with
/// SO_REUSEADDR, so that a restarted service gets its port back at once.
/// Returns the port.
result<std::uint16_t> publish(caf::actor_system& sys, const service_actor& service,
                              const std::string& host, std::uint16_t port);

}  // namespace varve::remote
