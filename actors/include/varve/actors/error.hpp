// The one place where Varve's errors become CAF errors and back.
//
// A varve::error travels as a caf::error of category "varve" whose code is
// the errc value and whose context holds the message; error_from turns any
// caf::error (CAF's own included, e.g. a dead actor) back into a varve::error.
#pragma once

#include <caf/atom.hpp>
#include <caf/error.hpp>

#include <varve/storage/error.hpp>

namespace caf {
class actor_system_config;
}

namespace varve {

/// The category atom of Varve's errors in CAF.
inline constexpr caf::atom_value error_category = caf::atom("varve");

/// For CAF: lets handlers return an errc, and a caf::error compare to one.
caf::error make_error(errc code);
caf::error make_error(errc code, std::string message);

/// A varve::error as a caf::error (code, category "varve", message).
caf::error to_caf(const error& e);

/// A caf::error as a varve::error. Errors of other categories keep their
/// text: a dead or unreachable actor becomes errc::unavailable, anything else
/// errc::io_error.
error error_from(const caf::error& e);

/// Registers the renderer that prints Varve errors as "varve::<code>: <message>".
void add_error_category(caf::actor_system_config& cfg);

}  // namespace varve
