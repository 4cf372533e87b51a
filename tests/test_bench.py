"""The convnet bench's arithmetic and table, on known numbers (the timings themselves live in the bench)."""

from nu_keras import bench


def test_the_convnet_table_compares_collect_with_the_baseline_and_the_estimate():
    row = {"collect": 5.0, "render": 10.0, "report": 20.0, "report_cpu": 25.0}
    summary = {"baseline abc": row | {"collect": 50.0}, "working tree": row}
    table = bench.convnet_table(summary, {"peak": 0.25, "tail-shaped": 2.0}, 20_480_000_000, 80e9, 10e9)
    assert "20.5 G multiply-adds" in table and "80 G/s square, 10 G/s tail-shaped" in table
    assert "| baseline abc | 50.0 s |  | 50.0 s (all of collect) | 200x / 25.0x |  |" in table
    working = "| working tree | 5.0 s | 10.0x faster | 5.0 s (all of collect) | 20x / 2.5x |  | 10.0 s | 20.0 s | 25.0"
    assert working in table


def test_the_conv_extras_are_their_own_column_and_the_estimate_judges_the_rest():
    row = {"collect": 8.0, "render": 10.0, "report": 20.0, "report_cpu": 25.0}
    parts = bench.convnet_parts(
        {"collect": 7.0, "conv_extras": 4.5, "channel_maps": 0.5, "class_mean_maps": 1.5, "feature_pictures": 2.0}
    )
    assert parts == {
        "readout_ablation": 2.5,
        "extras": 4.5,
        "top_maps": 0.5,
        "class_mean_maps": 1.5,
        "feature_visualisation": 2.0,
    }
    summary = {"baseline abc": row | {"collect": 40.0}, "working tree": row | parts}
    table = bench.convnet_table(summary, {"peak": 0.25, "tail-shaped": 2.0}, 20_480_000_000, 80e9, 10e9)
    assert "goal: read-out + ablation within 5x of it" in table
    assert "| working tree | 8.0 s | 5.0x faster | 2.5 s | 10x / 1.2x | 4.5 s (0.5 / 1.5 / 2.0 s) | 10.0 s |" in table


def test_class_mean_maps_summed_in_the_read_out_pass_count_as_extras():
    seconds = {"collect": 7.0, "conv_extras": 4.0, "feature_pictures": 3.0, "class_sums_in_read_out": 0.5}
    parts = bench.convnet_parts(seconds | {"channel_maps": 0.25, "add_class_sums": 9.0})  # 9.0: inside extras
    assert parts == {
        "readout_ablation": 2.5,
        "extras": 4.5,
        "top_maps": 0.25,
        "class_mean_maps": 0.5,
        "feature_visualisation": 3.0,
    }


def test_a_tree_without_conv_extras_has_no_parts():
    assert bench.convnet_parts({}) == {}


def test_matmul_throughput_is_multiply_adds_per_second():
    rate = bench.matmul_throughput((64, 32, 16), repeats=2)
    assert 1e6 < rate < 1e14  # 32 768 multiply-adds: between 0.3 ns and 33 ms, a wide but unit-checking bound
