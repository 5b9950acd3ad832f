// The atoms and message types of varve::remote, registered after Varve's
// and the projections' blocks, on both sides of a connection (service and
// clients):
//   varve::remote::configure_remote(cfg);   // see service.hpp
// protocol.hpp defines the types; this block comes first, so that the
// service's interface can name its atom.
#pragma once

#include <caf/type_id.hpp>

#include <varve/projections/type_ids.hpp>

namespace varve {
struct command_reply;
struct query;
struct registry_stats;
}  // namespace varve

namespace varve::remote {
struct event_batch;
struct filter_terms;
}  // namespace varve::remote

CAF_BEGIN_TYPE_ID_BLOCK(varve_remote, caf::id_block::varve_projections::end)

CAF_ADD_ATOM(varve_remote, varve::remote, hello_atom, "vhello")
CAF_ADD_ATOM(varve_remote, varve::remote, read_query_atom, "vrquery")

CAF_ADD_TYPE_ID(varve_remote, (varve::remote::event_batch))
CAF_ADD_TYPE_ID(varve_remote, (varve::command_reply))
CAF_ADD_TYPE_ID(varve_remote, (varve::registry_stats))
CAF_ADD_TYPE_ID(varve_remote, (varve::remote::filter_terms))
CAF_ADD_TYPE_ID(varve_remote, (varve::query))

CAF_END_TYPE_ID_BLOCK(varve_remote)
