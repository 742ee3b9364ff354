"""The channel coupling graph of a Keras model, as data: tensors' channel layouts and groups.

A *layout* says what a tensor's last (channel) axis is made of: segments of groups, in order (a
Concatenate joins its inputs' layouts). A *group* is a set of coupled output channels removed
together: a producer (Conv, Dense, ...) starts one, a join (Add, Multiply, ...) merges its
inputs' groups (a union-find). `channel_trace` builds the graph; `channel_weights` slices by it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Segment:
    """`size` consecutive channels of one group (None: channels that cannot be pruned)."""

    group: int | None
    size: int


@dataclass(frozen=True)
class Layout:
    """The channel axis of a tensor as a run of segments. `flat`: after a Flatten, the channel
    index runs fastest and the run repeats once per spatial position ((h*W + w)*C + c)."""

    segments: tuple[Segment, ...]
    flat: bool = False

    @property
    def channels(self) -> int:
        return sum(segment.size for segment in self.segments)


@dataclass
class LayerChannels:
    """How one layer's weights follow the groups: `inputs` is the layout of its input channels
    (a consumer's kernel rows), `output` of its output channels (same as inputs for followers);
    `inner` counts the rows per input channel (a separable conv's depth multiplier)."""

    name: str
    kind: str
    inputs: Layout | None
    output: Layout | None
    inner: int = 1


@dataclass
class Group:
    """A resolved group: its `producers` make its channels, `layers` own weights sliced with it;
    `reasons` say why it must stay whole, `at_output` whether it reaches a model output."""

    id: int
    name: str
    size: int
    producers: list[str]
    layers: list[str]
    reasons: list[str]
    at_output: bool
    kind: str


@dataclass
class ChannelGraph:
    """Groups (a union-find over the producers' output channels) and the layers they touch."""

    parents: list[int] = field(default_factory=list)
    owners: list[str] = field(default_factory=list)
    sizes: list[int] = field(default_factory=list)
    reasons: dict[int, list[str]] = field(default_factory=lambda: defaultdict(list))
    at_output: set[int] = field(default_factory=set)
    layers: dict[str, LayerChannels] = field(default_factory=dict)
    outputs: list[Layout | None] = field(default_factory=list)

    def new_group(self, owner: str, size: int) -> int:
        self.parents.append(len(self.parents))
        self.owners.append(owner)
        self.sizes.append(size)
        return len(self.parents) - 1

    def find(self, group: int) -> int:
        while self.parents[group] != group:
            self.parents[group] = self.parents[self.parents[group]]
            group = self.parents[group]
        return group

    def union(self, a: int, b: int) -> None:
        low, high = sorted((self.find(a), self.find(b)))
        self.parents[high] = low  # the earliest producer names the group

    def roots(self, layout: Layout | None) -> Iterator[int]:
        for segment in layout.segments if layout else ():
            if segment.group is not None:
                yield self.find(segment.group)

    def leave_whole(self, layout: Layout | None, why: str) -> None:
        for segment in layout.segments if layout else ():
            if segment.group is not None:
                self.reasons[segment.group].append(why)

    def groups(self) -> list[Group]:
        """Every group, in model order, with its members and what keeps it whole."""
        members: dict[int, list[int]] = defaultdict(list)
        for group in range(len(self.parents)):
            members[self.find(group)].append(group)
        touching: dict[int, list[str]] = defaultdict(list)
        for entry in self.layers.values():
            for root in dict.fromkeys([*self.roots(entry.inputs), *self.roots(entry.output)]):
                touching[root].append(entry.name)
        result = []
        for root, ids in members.items():
            producers = [self.owners[i] for i in ids]
            kinds = {self.layers[name].kind for name in producers}
            result.append(
                Group(
                    id=root,
                    name=self.owners[root],
                    size=self.sizes[root],
                    producers=producers,
                    layers=touching[root],
                    reasons=list(dict.fromkeys(r for i in ids for r in self.reasons[i])),
                    at_output=any(i in self.at_output for i in ids),
                    kind="neurons" if kinds == {"Dense"} else "channels",
                )
            )
        return result
