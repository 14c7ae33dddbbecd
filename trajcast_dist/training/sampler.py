"""Which frames each rank trains on: global batches that do not depend on the number of ranks.

How (issue #5). A global batch has B frames. The training split is cut into *blocks* — the store's shards
(cut at `max_train_frames`), or, when there are fewer shards than B, each shard split into equal parts. Every
epoch the blocks are permuted with a seed of (seed, epoch), identical on every rank, and dealt round-robin to
B *streams*; a stream is the concatenation of its blocks, each block's frames shuffled with (seed, epoch,
block start). Global batch k is the k-th frame of every stream, so the set of frames in a batch is fixed by
(seed, epoch, k) alone. Rank r of W owns streams [r·B/W, (r+1)·B/W) — its slice of every batch — and reads
only the blocks of those streams, one block per stream in memory at a time. An epoch has as many steps as
the shortest stream; leftover frames of longer streams wait for another epoch (the permutation changes).
Resuming at step k of an epoch skips k frames per stream without reading the skipped blocks.

Validation and test frames are dealt block-wise round-robin to ranks (every frame exactly once); their
metrics are sums, so they are all-reduced and do not depend on the number of ranks either.
"""

from __future__ import annotations

import math

import numpy as np

from trajcast_dist.errors import UserError

__all__ = ["GlobalBatchSampler", "rank_frames", "read_block", "split_blocks"]


class GlobalBatchSampler:
    """This rank's share of every global batch of a training split (see module docstring)."""

    def __init__(self, store, split: str, global_batch: int, rank: int, world_size: int, seed: int,
                 max_frames: int | None = None):
        if global_batch % world_size:
            raise UserError(f"training.batch_size = {global_batch} (global) does not divide over {world_size} "
                            f"ranks; choose a batch size that is a multiple of the number of ranks")
        self.store, self.split = store, split
        self.global_batch, self.rank, self.world_size, self.seed = global_batch, rank, world_size, seed
        self.per_rank = global_batch // world_size
        self.blocks = split_blocks(store, split, global_batch, max_frames)
        if sum(b - a for a, b in self.blocks) < global_batch:
            raise UserError(f"{store.path}: split {split!r} has {sum(b - a for a, b in self.blocks)} frames, fewer "
                            f"than one global batch of {global_batch}")

    def streams(self, epoch: int) -> list[list[tuple[int, int]]]:
        order = np.random.default_rng([int(self.seed), int(epoch)]).permutation(len(self.blocks))
        blocks = [self.blocks[i] for i in order]
        return [blocks[s::self.global_batch] for s in range(self.global_batch)]

    def steps_per_epoch(self, epoch: int) -> int:
        return min(sum(b - a for a, b in stream) for stream in self.streams(epoch))

    def owned_streams(self, epoch: int) -> list[list[tuple[int, int]]]:
        first = self.rank * self.per_rank
        return self.streams(epoch)[first:first + self.per_rank]

    def batches(self, epoch: int, start_step: int = 0):
        """Yield (step, frames) for this rank: its `per_rank` frames of global batches start_step, …"""
        steps = self.steps_per_epoch(epoch)
        iterators = [self._stream_frames(stream, epoch, start_step) for stream in self.owned_streams(epoch)]
        for step in range(start_step, steps):
            yield step, [next(it) for it in iterators]

    def _stream_frames(self, stream, epoch: int, skip: int):
        for start, stop in stream:
            if skip >= stop - start:
                skip -= stop - start
                continue
            frames = read_block(self.store, self.split, start, stop)
            order = np.random.default_rng([int(self.seed), int(epoch), int(start)]).permutation(len(frames))
            for i in order[skip:]:
                yield frames[i]
            skip = 0


def rank_frames(store, split: str, rank: int, world_size: int, max_frames: int | None = None):
    """Every frame of `split` (up to max_frames) exactly once over all ranks; this rank's share, block-wise."""
    for start, stop in split_blocks(store, split, world_size, max_frames)[rank::world_size]:
        yield from read_block(store, split, start, stop)


def split_blocks(store, split: str, at_least: int, max_frames: int | None = None) -> list[tuple[int, int]]:
    """The split's shards cut at `max_frames`; shards are split into equal parts if there are < `at_least`."""
    limit = store.n_frames(split) if max_frames is None else max_frames
    blocks = [(a, min(b, limit)) for a, b in store.shards(split) if a < limit]
    if len(blocks) >= at_least:
        return blocks
    parts = math.ceil(at_least / max(1, len(blocks)))
    finer = []
    for a, b in blocks:
        edges = np.linspace(a, b, min(parts, b - a) + 1).round().astype(int)
        finer += [(int(x), int(y)) for x, y in zip(edges[:-1], edges[1:]) if y > x]
    return finer


def read_block(store, split: str, start: int, stop: int) -> list[dict]:
    """Frames [start, stop) of a split as dicts, in one read; a damaged store becomes a one-line UserError."""
    try:
        return store.read_frames(split, start, stop)
    except UserError:
        raise
    except Exception as err:  # a damaged shard: name it rather than a codec's internals
        raise UserError(f"{store.path}: cannot read frames {start}–{stop - 1} of split {split!r} "
                        f"({type(err).__name__}: {err}); the store is damaged, rebuild it with "
                        "`trajcast-dist data pairs`") from err
