// The message types of varve::projections, registered after Varve's own:
//   cfg.add_message_types<caf::id_block::varve_projections>();
#pragma once

#include <caf/type_id.hpp>

#include <vector>

#include <varve/actors/type_ids.hpp>

namespace varve {
struct projection_status;
}

CAF_BEGIN_TYPE_ID_BLOCK(varve_projections, caf::id_block::varve::end)

CAF_ADD_ATOM(varve_projections, varve, control_error_atom, "vctlerror")

CAF_ADD_TYPE_ID(varve_projections, (varve::projection_status))
CAF_ADD_TYPE_ID(varve_projections, (std::vector<varve::projection_status>))

CAF_END_TYPE_ID_BLOCK(varve_projections)
