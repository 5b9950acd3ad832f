// Forks (private to varve::storage): how many fork(2) children this process
// descends from. State drawn at random before a fork (the random part of
// event ids, the nonce prefix of a sealer) would be drawn again in neither
// the parent nor the child: whoever keeps such state compares this count
// with the one it drew at, and draws again when they differ.
#pragma once

namespace varve::detail {

/// 0 in a process that no fork made; one more in each child than in its
/// parent at the fork. Costs a relaxed atomic load.
unsigned forks_made() noexcept;

}  // namespace varve::detail
