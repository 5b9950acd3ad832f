// Varve's atoms and message types, registered with CAF's type-id blocks.
//
// An application registers them once in its actor_system_config:
//   cfg.add_message_types<caf::id_block::varve>();
// (varve::configure in config/ does it, with the projections' block). Varve
// takes the ids from caf::first_custom_type_id: this block, then
// caf::id_block::varve_projections (varve/projections/type_ids.hpp), then
// the remote one (varve/remote/type_ids.hpp). An application that runs in
// one process needs no block of its own: its commands and events travel
// inside messages without type ids. One whose messages cross processes
// starts its block at caf::id_block::varve_projections::end (or at
// caf::id_block::varve_remote::end when it includes the remote headers).
#pragma once

#include <caf/atom.hpp>
#include <caf/type_id.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include <varve/storage/event_store.hpp>

namespace varve {
struct commit_stats;
}

CAF_BEGIN_TYPE_ID_BLOCK(varve, caf::first_custom_type_id)

CAF_ADD_ATOM(varve, varve, append_atom, "vappend")
CAF_ADD_ATOM(varve, varve, write_atom, "vwrite")
CAF_ADD_ATOM(varve, varve, read_atom, "vread")
CAF_ADD_ATOM(varve, varve, read_log_atom, "vreadlog")
CAF_ADD_ATOM(varve, varve, subscribe_atom, "vsub")
CAF_ADD_ATOM(varve, varve, unsubscribe_atom, "vunsub")
CAF_ADD_ATOM(varve, varve, committed_atom, "vcommitted")
CAF_ADD_ATOM(varve, varve, stats_atom, "vstats")
CAF_ADD_ATOM(varve, varve, flush_atom, "vflush")
CAF_ADD_ATOM(varve, varve, command_atom, "vcommand")
CAF_ADD_ATOM(varve, varve, passivate_atom, "vpassivate")
CAF_ADD_ATOM(varve, varve, shred_atom, "vshred")

CAF_ADD_TYPE_ID(varve, (varve::event_id))
CAF_ADD_TYPE_ID(varve, (varve::expected_version))
CAF_ADD_TYPE_ID(varve, (varve::new_event))
CAF_ADD_TYPE_ID(varve, (varve::append_request))
CAF_ADD_TYPE_ID(varve, (std::vector<varve::append_request>))
CAF_ADD_TYPE_ID(varve, (varve::append_result))
CAF_ADD_TYPE_ID(varve, (std::vector<varve::append_result>))
CAF_ADD_TYPE_ID(varve, (varve::recorded_event))
CAF_ADD_TYPE_ID(varve, (std::vector<varve::recorded_event>))
CAF_ADD_TYPE_ID(varve, (varve::write_request))
CAF_ADD_TYPE_ID(varve, (varve::commit_stats))

CAF_END_TYPE_ID_BLOCK(varve)
