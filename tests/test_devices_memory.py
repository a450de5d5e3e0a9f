"""The arena planner: lifetimes and TFLite Micro's greedy first-fit, on cases computed by hand."""

from wearprune.devices.memory import Buffer, align, greedy_plan, lifetimes


def test_align_rounds_up_to_16_bytes():
    assert [align(n) for n in (0, 1, 16, 17, 100)] == [0, 16, 16, 32, 112]


def test_chain_needs_the_largest_input_output_pair_not_the_sum():
    # x(100) -> k1 -> a(400) -> k2 -> b(200) -> k3 -> c(50)
    life = lifetimes(3, [([0], 1), ([1], 2), ([2], 3)], inputs=[0], outputs=[3], n_tensors=4)
    assert life == {0: (0, 1), 1: (1, 2), 2: (2, 3), 3: (3, 3)}
    sizes = [112, 400, 208, 64]
    peak, offsets = greedy_plan([Buffer(sizes[t], *life[t]) for t in range(4)])
    assert peak == 400 + 208  # k2 holds a and b; the sum of all four would be 784
    assert offsets[1] == 0


def test_residual_block_keeps_the_skip_alive():
    # x -> conv1 -> a -> conv2 -> b ; add(x, b) -> y ; all 1 KB
    life = lifetimes(3, [([0], 1), ([1], 2), ([0, 2], 3)], inputs=[0], outputs=[3], n_tensors=4)
    assert life[0] == (0, 3)  # the skip lives until the add
    peak, _ = greedy_plan([Buffer(1024, *life[t]) for t in range(4)])
    assert peak == 3 * 1024  # x, and two of a/b/y at any time; a chain without the skip needs 2 KB


def test_equal_sizes_place_the_later_tensor_first():
    # two buffers of equal size alive at disjoint times share offset 0 whatever the order,
    # but a third overlapping both goes above them
    bufs = [Buffer(64, 0, 1), Buffer(64, 2, 3), Buffer(32, 1, 2)]
    peak, offsets = greedy_plan(bufs)
    assert offsets[0] == offsets[1] == 0 and offsets[2] == 64 and peak == 96


def test_a_gap_between_buffers_is_reused():
    bufs = [Buffer(100, 0, 0), Buffer(300, 0, 2), Buffer(50, 1, 1)]
    peak, offsets = greedy_plan(bufs)
    # 300 at 0, then 100 at 300, then 50 (alive with 300 only) also at 300: the 100 is dead by then
    assert offsets == [300, 0, 300] and peak == 400
