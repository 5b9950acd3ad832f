#include "varve/remote/client.hpp"

#include <caf/actor_cast.hpp>
#include <caf/actor_system.hpp>
#include <caf/io/middleman.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/sec.hpp>

#include <varve/actors/error.hpp>

#include "handshake.hpp"
#include "varve/remote/detail/ask.hpp"

namespace varve::remote {

error error_from_remote(const caf::error& e) {
  if (e.category() == caf::atom("system")) {
    const auto s = static_cast<caf::sec>(e.code());
    if (s == caf::sec::request_timeout)
      return error{errc::unavailable, "the store service did not answer in time"};
    if (s == caf::sec::request_receiver_down || s == caf::sec::no_context)
      return error{errc::unavailable, "the store service is gone (" + caf::to_string(s) + ")"};
  }
  return error_from(e);
}

using detail::ask;

namespace detail {

error interface_mismatch(const std::string& where, std::uint32_t protocol) {
  return error{errc::invalid_argument, "protocol version mismatch: client speaks " +
                                           std::to_string(protocol) + ", the service at " + where +
                                           " offers another interface (another protocol version)"};
}

error connect_failed(caf::actor_system& sys, const std::string& where, const caf::error& e,
                     std::uint32_t protocol) {
  if (e == caf::sec::unexpected_actor_messaging_interface)
    return interface_mismatch(where, protocol);
  return error{errc::unavailable,
               "cannot connect to the store service at " + where + ": " + sys.render(e)};
}

error handshake_failed(const std::string& where, const error& e) {
  return error{e.code(), "store service at " + where + ": " + e.message()};
}

error version_mismatch(const std::string& where, std::uint32_t ours, std::uint32_t theirs) {
  return error{errc::invalid_argument, "protocol version mismatch: client speaks " +
                                           std::to_string(ours) + ", service at " + where +
                                           " speaks " + std::to_string(theirs)};
}

}  // namespace detail

result<service_actor> connect(caf::actor_system& sys, const std::string& host, std::uint16_t port,
                              client_options opts) {
  const std::string where = host + ":" + std::to_string(port);
  auto raw = sys.middleman().remote_actor<service_actor>(host, port);
  if (!raw) return detail::connect_failed(sys, where, raw.error(), opts.protocol);
  auto hello = ask<std::uint32_t>(sys, *raw, opts.timeout, hello_atom_v, opts.protocol);
  if (!hello) return detail::handshake_failed(where, hello.err());
  if (*hello != opts.protocol) return detail::version_mismatch(where, opts.protocol, *hello);
  return std::move(*raw);
}

result<client> client::open(caf::actor_system& sys, const std::string& host, std::uint16_t port,
                            client_options opts) {
  auto h = connect(sys, host, port, opts);
  if (!h) return std::move(h).err();
  return client{sys, std::move(*h), opts};
}

result<append_result> client::append(append_request request) {
  return ask<append_result>(*sys_, service_, opts_.timeout, append_atom_v, std::move(request));
}

result<append_result> client::append(std::string stream, expected_version expected,
                                     std::vector<new_event> events) {
  return append(append_request{std::move(stream), expected, std::move(events)});
}

result<std::vector<append_result>> client::append(std::vector<append_request> requests) {
  return ask<std::vector<append_result>>(*sys_, service_, opts_.timeout, append_atom_v,
                                         std::move(requests));
}

result<std::vector<append_result>> client::append(std::vector<append_request> requests,
                                                  append_condition condition) {
  write_request w;
  w.appends = std::move(requests);
  w.condition = std::move(condition);
  return write(std::move(w));
}

result<std::vector<append_result>> client::write(write_request request) {
  return ask<std::vector<append_result>>(*sys_, service_, opts_.timeout, write_atom_v,
                                         std::move(request));
}

result<std::vector<recorded_event>> client::read_stream(const std::string& stream,
                                                        stream_version from, direction dir,
                                                        std::uint64_t limit) {
  auto b = ask<event_batch>(*sys_, service_, opts_.timeout, read_atom_v, stream, from,
                            dir == direction::backward, limit);
  if (!b) return std::move(b).err();
  return std::move(b->events);
}

result<std::vector<recorded_event>> client::read_log(global_position from, direction dir,
                                                     std::uint64_t limit) {
  auto b = ask<event_batch>(*sys_, service_, opts_.timeout, read_log_atom_v, from,
                            dir == direction::backward, limit);
  if (!b) return std::move(b).err();
  return std::move(b->events);
}

result<event_batch> client::read_log_batch(global_position from, std::uint64_t limit) {
  return ask<event_batch>(*sys_, service_, opts_.timeout, read_log_atom_v, from, false, limit);
}

result<std::vector<recorded_event>> client::read_query(const query& q, global_position from,
                                                       direction dir, std::uint64_t limit) {
  auto b = ask<event_batch>(*sys_, service_, opts_.timeout, read_query_atom_v, q, from,
                            dir == direction::backward, limit);
  if (!b) return std::move(b).err();
  return std::move(b->events);
}

result<event_batch> client::read_query_batch(const query& q, global_position from,
                                             std::uint64_t limit) {
  return ask<event_batch>(*sys_, service_, opts_.timeout, read_query_atom_v, q, from, false, limit);
}

result<stream_version> client::shred(const std::string& stream) {
  return ask<std::uint64_t>(*sys_, service_, opts_.timeout, shred_atom_v, stream);
}

result<commit_stats> client::stats() {
  return ask<commit_stats>(*sys_, service_, opts_.timeout, stats_atom_v);
}

result<caf::actor> client::aggregate(const std::string& type) {
  return ask<caf::actor>(*sys_, service_, opts_.timeout, command_atom_v, type);
}

}  // namespace varve::remote
