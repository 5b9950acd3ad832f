// The atoms and message types of varve::projections, registered after
// Varve's own:
//   cfg.add_message_types<caf::id_block::varve_projections>();
// (varve::configure and varve::remote::configure_remote do it).
#pragma once

#include <caf/type_id.hpp>

#include <vector>

#include <varve/actors/storage_actor.hpp>

namespace varve {
struct projection_status;
}

CAF_BEGIN_TYPE_ID_BLOCK(varve_projections, caf::id_block::varve::end)

// What users send to projections and to their manager.
CAF_ADD_ATOM(varve_projections, varve, status_atom, "vstatus")
CAF_ADD_ATOM(varve_projections, varve, pause_atom, "vpause")
CAF_ADD_ATOM(varve_projections, varve, resume_atom, "vresume")
CAF_ADD_ATOM(varve_projections, varve, reset_atom, "vreset")
CAF_ADD_ATOM(varve_projections, varve, rebuild_atom, "vrebuild")
CAF_ADD_ATOM(varve_projections, varve, list_atom, "vlist")
// Internal: a control request that did not read, the engine's timers, the
// log source's timer, the manager's poll.
CAF_ADD_ATOM(varve_projections, varve, control_error_atom, "vctlerror")
CAF_ADD_ATOM(varve_projections, varve, continue_atom, "vcontinue")
CAF_ADD_ATOM(varve_projections, varve, retry_atom, "vretry")
CAF_ADD_ATOM(varve_projections, varve, checkpoint_atom, "vcheckpt")
CAF_ADD_ATOM(varve_projections, varve, source_timer_atom, "vsrctimer")
CAF_ADD_ATOM(varve_projections, varve, poll_atom, "vpoll")

CAF_ADD_TYPE_ID(varve_projections, (varve::projection_status))
CAF_ADD_TYPE_ID(varve_projections, (std::vector<varve::projection_status>))
// The handle by which projections follow a storage actor's (or a store
// service's) heads; it crosses the network to a service.
CAF_ADD_TYPE_ID(varve_projections, (varve::head_subscriber))

CAF_END_TYPE_ID_BLOCK(varve_projections)
