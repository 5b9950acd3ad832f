// Given / when / then for an aggregate: its pure fold, without actors and
// without a store.
//
//   varve::testkit::aggregate_test<bank::account> t;
//   t.given({bank::opened{"ada"}, bank::deposited{100}})
//    .when(bank::withdraw{50});
//   BOOST_TEST(t.then_events({bank::withdrawn{50}}));
//   BOOST_TEST(t.state().balance == 50);
//
//   BOOST_TEST(t.when(bank::withdraw{500}).then_rejected_with("insufficient"));
//
// It does what the aggregate actor does with the same events and commands
// (varve/actors/aggregate.hpp), minus the store: given() applies each event
// as hydration reads it back (encoded, then decoded with the aggregate's
// codec, then A::apply); when() calls A::decide on the state, encodes what it
// decided (an event that does not encode refuses the command with
// errc::invalid_argument, as the actor does) and applies the decided events.
// The checks (then_*) compare events by their encoding and answer a verdict
// (verdict.hpp): true, or false with a message naming each difference.
//
// Exceptions thrown by A::apply, A::decide or the codec pass through (in an
// actor they would crash it). One object is used by one thread at a time; it
// owns its state and copies of the events and commands it is given.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "varve/testkit/events.hpp"

namespace varve::testkit {

namespace detail {

/// "1 event ('withdrawn')" / "2 events ('opened', 'deposited')".
std::string describe_events(std::span<const encoded_event> events);

/// The message of a check that expected events but got a refusal, or
/// expected a refusal but got events.
std::string refused_instead(std::span<const encoded_event> expected, const error& refusal);
std::string decided_instead(std::string_view expected_refusal,
                            std::span<const encoded_event> decided);

}  // namespace detail

template <aggregate A>
class aggregate_test {
 public:
  using state_type = typename A::state;
  using event_type = typename A::event;
  using command_type = typename A::command;

  /// A fresh aggregate: `state_type{}` at version 0.
  aggregate_test() = default;

  /// Applies `events` in order to the state, each first encoded and decoded
  /// with A's codec, as hydration reads stored events. Forgets the outcome
  /// of an earlier when(). Throws testkit_error naming the event (index and
  /// type) that does not encode (then none is applied) or does not decode
  /// (then those before it stay applied). Returns *this.
  aggregate_test& given(const std::vector<event_type>& events) {
    outcome_.reset();
    const auto encoded = encode_all<A>(std::span<const event_type>(events), "given event");
    for (std::size_t i = 0; i < encoded.size(); ++i) {
      auto decoded = codec_of<A>::decode(encoded[i].type, encoded[i].bytes);
      if (!decoded)
        throw testkit_error("given event " + std::to_string(i) + " ('" + encoded[i].type +
                            "') does not decode with the aggregate's codec after encoding");
      A::apply(state_, *decoded);
      ++version_;
    }
    return *this;
  }

  /// Runs `commands` in order as when() does; each must be accepted. Throws
  /// testkit_error naming the command's index and its refusal otherwise
  /// (the commands before it stay applied). Forgets the outcome. Returns
  /// *this.
  aggregate_test& given_commands(const std::vector<command_type>& commands) {
    for (std::size_t i = 0; i < commands.size(); ++i) {
      when(commands[i]);
      if (outcome_->refusal)
        throw testkit_error("given command " + std::to_string(i) +
                            " was refused: " + outcome_->refusal->to_string());
    }
    outcome_.reset();
    return *this;
  }

  /// Decides `cmd` against the current state. Accepted: the decided events
  /// (none is fine) are applied and the version moves past them. Refused
  /// (decide's error, or errc::invalid_argument for a decided event that
  /// does not encode): the state stays. Either way the outcome is kept for
  /// the then_* checks until the next given() or when(). Returns *this.
  aggregate_test& when(const command_type& cmd) {
    outcome_.reset();
    auto decided = A::decide(static_cast<const state_type&>(state_), cmd);
    outcome out;
    if (!decided) {
      out.refusal = decided.err();
    } else {
      for (std::size_t i = 0; i < decided->size(); ++i) {
        auto e = encode<A>((*decided)[i]);
        if (!e) {
          out.refusal = error{errc::invalid_argument, "decided event " + std::to_string(i) + " ('" +
                                                          codec_of<A>::type_of((*decided)[i]) +
                                                          "') does not serialise"};
          out.encoded.clear();
          break;
        }
        out.encoded.push_back(std::move(*e));
      }
      if (!out.refusal) {
        for (const auto& e : *decided) {
          A::apply(state_, e);
          ++version_;
        }
        out.events = std::move(*decided);
      }
    }
    outcome_ = std::move(out);
    return *this;
  }

  /// Passes when the last when() was accepted and decided exactly
  /// `expected` (same count, order, types and encoded bytes). The message
  /// names each difference (index, expected and actual type, differing
  /// payloads), or the refusal that came instead, or that no when() ran.
  /// Throws testkit_error when an expected event does not encode.
  verdict then_events(const std::vector<event_type>& expected) const {
    if (!outcome_) return no_command();
    const auto want = encode_all<A>(std::span<const event_type>(expected), "expected event");
    if (outcome_->refusal) return verdict::fail(detail::refused_instead(want, *outcome_->refusal));
    return compare_events(want, outcome_->encoded);
  }

  /// Passes when the last when() was refused with `code` (default:
  /// errc::rejected, a broken domain rule). The message says what came
  /// instead: the events decided, or a refusal with another code.
  verdict then_rejected(errc code = errc::rejected) const {
    if (!outcome_) return no_command();
    const std::string want = "a refusal with " + std::string(to_string(code));
    if (!outcome_->refusal) return verdict::fail(detail::decided_instead(want, outcome_->encoded));
    if (outcome_->refusal->code() != code)
      return verdict::fail("expected " + want + ", but it was refused with " +
                           outcome_->refusal->to_string());
    return verdict::pass();
  }

  /// Passes when the last when() was refused, with any code, and the
  /// refusal's message contains `text`.
  verdict then_rejected_with(std::string_view text) const {
    if (!outcome_) return no_command();
    const std::string want = "a refusal saying '" + std::string(text) + "'";
    if (!outcome_->refusal) return verdict::fail(detail::decided_instead(want, outcome_->encoded));
    if (outcome_->refusal->message().find(text) == std::string::npos)
      return verdict::fail("expected " + want + ", but it was refused with " +
                           outcome_->refusal->to_string());
    return verdict::pass();
  }

  /// The state: given events and accepted commands folded into state_type{}.
  const state_type& state() const noexcept { return state_; }
  /// The stream version an aggregate actor would be at: the events applied.
  stream_version version() const noexcept { return version_; }
  /// The events the last when() decided (empty when refused or none ran).
  const std::vector<event_type>& events() const noexcept {
    static const std::vector<event_type> none;
    return outcome_ ? outcome_->events : none;
  }
  /// The refusal of the last when(); std::nullopt when it was accepted or
  /// none ran.
  std::optional<error> refusal() const {
    return outcome_ ? outcome_->refusal : std::optional<error>{};
  }

 private:
  struct outcome {
    std::optional<error> refusal;
    std::vector<event_type> events;
    std::vector<encoded_event> encoded;
  };

  static verdict no_command() {
    return verdict::fail("no command to check: call when() before a then_* check");
  }

  state_type state_{};
  stream_version version_ = 0;
  std::optional<outcome> outcome_;
};

}  // namespace varve::testkit
