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

/// Counts a fork that fork()'s handlers did not see: a child made by
/// syscall(SYS_fork) or clone(2) without CLONE_VM, which runs no
/// pthread_atfork handler. Compares getpid() with the process id seen last
/// and, when they differ, adds one to forks_made(). Costs a system call
/// (about 230 ns here): a write transaction calls it once as it begins,
/// which covers the ids and nonces drawn within it; event_id::generate()
/// does not (it would cost four times what it does). Not noticed: a child
/// whose process id equals the one seen last (a child of a new PID
/// namespace's first process, which is 1 there too, or an id reused after
/// its owner exited).
void notice_unannounced_fork() noexcept;

}  // namespace varve::detail
