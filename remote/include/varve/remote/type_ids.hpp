// The message types of varve::remote, registered after Varve's and the
// projections' blocks, on both sides of a connection (service and clients):
//   varve::remote::configure_remote(cfg);   // see service.hpp
#pragma once

#include <caf/type_id.hpp>

#include <varve/projections/type_ids.hpp>

#include "varve/remote/protocol.hpp"

namespace varve {
struct command_reply;
struct registry_stats;
}  // namespace varve

CAF_BEGIN_TYPE_ID_BLOCK(varve_remote, caf::id_block::varve_projections::end)

CAF_ADD_TYPE_ID(varve_remote, (varve::remote::event_batch))
CAF_ADD_TYPE_ID(varve_remote, (varve::remote::service_actor))
CAF_ADD_TYPE_ID(varve_remote, (varve::command_reply))
CAF_ADD_TYPE_ID(varve_remote, (varve::registry_stats))

CAF_END_TYPE_ID_BLOCK(varve_remote)
