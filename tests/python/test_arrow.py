"""Arrow and pandas: batches of every field kind the ring accepts as pyarrow RecordBatches and
DataFrames, zero-copy where the dtype allows, from C++ and Python producers, and journals."""

import subprocess
import sys

import numpy as np
import pytest

import xdisruptor
from conftest import PEER_DTYPE, REPO, check_peer_events

pa = pytest.importorskip("pyarrow")
pd = pytest.importorskip("pandas")

PEER_PY = REPO / "tests" / "peer" / "peer.py"

RICH = np.dtype([("seq", "<i8"), ("px", "<f8"), ("qty", "<i4"), ("flag", "?"),
                 ("sym", "S8"), ("levels", "<f8", (3,)),
                 ("ts", "<M8[ns]"), ("_pad", "V4"), ("raw", "V4")])


def rich_events(n, first=0):
    a = np.zeros(n, RICH)
    a["seq"] = np.arange(first, first + n)
    a["px"] = a["seq"] * 0.5
    a["qty"] = a["seq"] % 7
    a["flag"] = a["seq"] % 2 == 0
    a["sym"] = [b"AB" if s % 3 else b"LONGSYM8" for s in a["seq"]]
    a["levels"] = a["seq"][:, None] + np.arange(3)
    a["ts"] = a["seq"].astype("M8[ns]")
    a["raw"] = [bytes([s % 256, 1, 2, 3]) for s in a["seq"]]
    return a


def test_should_convert_every_field_kind_to_arrow_and_pandas(ring_name):
    with xdisruptor.Ring.create(ring_name, capacity=256, dtype=RICH) as ring:
        consumer = ring.consumer("arrow")
        with ring.producer() as p:
            p.publish_batch(rich_events(100))
        rows = 0
        for rb in consumer.arrow_batches(max_size=64):
            events = rich_events(rb.num_rows, rows)
            assert rb.schema.names == ["seq", "px", "qty", "flag", "sym", "levels", "ts",
                                       "raw"]  # padding left out
            assert rb.column("seq").to_pylist() == events["seq"].tolist()
            assert rb.column("px").type == pa.float64()
            assert rb.column("flag").to_pylist() == events["flag"].tolist()
            assert rb.column("sym").to_pylist() == events["sym"].tolist()  # NULs stripped
            assert rb.column("levels").type == pa.list_(pa.float64(), 3)
            assert rb.column("levels").to_pylist()[1] == events["levels"][1].tolist()
            assert rb.column("ts").type == pa.timestamp("ns")
            assert rb.column("raw").type == pa.binary(4)
            assert rb.column("raw").to_pylist()[3] == bytes(events["raw"][3])
            rows += rb.num_rows
        assert rows == 100
        consumer.close()
    df = xdisruptor.to_pandas(rich_events(10))
    assert list(df["seq"]) == list(range(10)) and df["sym"][1] == b"AB"
    assert df["px"].dtype == np.float64 and df["ts"].dtype.kind == "M"
    # Nested records (which a ring does not carry, but an array may) become structs.
    nested = np.zeros(3, [("quote", [("bid", "<f4"), ("ask", "<f4")]), ("n", "<i2")])
    nested["quote"]["ask"] = [1, 2, 3]
    rb = xdisruptor.to_arrow(nested)
    assert rb.column("quote").to_pylist()[2] == {"bid": 0.0, "ask": 3.0}


def test_should_convert_big_endian_fields_into_native_order(ring_name):
    dt = np.dtype([("seq", ">i8"), ("px", ">f8"), ("ts", ">M8[us]"), ("n", ">u2")])
    with xdisruptor.Ring.create(ring_name, capacity=64, dtype=dt) as ring:
        consumer = ring.consumer("arrow")
        events = np.zeros(10, dt)
        events["seq"] = np.arange(10)
        events["px"] = np.arange(10) / 4
        events["ts"] = np.arange(10).astype("M8[us]")
        events["n"] = 65535 - np.arange(10)
        with ring.producer() as p:
            p.publish_batch(events)
        (rb,) = list(consumer.arrow_batches())
        assert rb.column("seq").to_pylist() == list(range(10))
        assert rb.column("px").to_pylist() == [i / 4 for i in range(10)]
        assert rb.column("ts").type == pa.timestamp("us")
        assert rb.column("n").to_pylist() == [65535 - i for i in range(10)]
        consumer.close()


def test_should_be_zero_copy_for_a_one_field_dtype_and_copy_otherwise():
    one = np.arange(1000.0).view(np.dtype([("v", "<f8")]))
    rb = xdisruptor.to_arrow(one)
    assert rb.column("v").buffers()[1].address == one.__array_interface__["data"][0]
    two = np.zeros(1000, np.dtype([("a", "<f8"), ("b", "<i8")]))
    rb = xdisruptor.to_arrow(two)
    assert rb.column("a").buffers()[1].address != two.__array_interface__["data"][0]
    two["a"] = 5.0  # the RecordBatch owns its columns: a later write does not show
    assert rb.column("a").to_pylist()[0] == 0.0
    with pytest.raises(TypeError):
        xdisruptor.to_arrow(np.arange(3))


@pytest.mark.parametrize("producer", ["cpp", "py"])
def test_should_read_a_peer_stream_as_arrow(ring_name, peer, producer):
    with xdisruptor.Ring.create(ring_name, capacity=1024, dtype=PEER_DTYPE) as ring:
        consumer = ring.consumer("arrow")
        head = [peer] if producer == "cpp" else [sys.executable, str(PEER_PY)]
        proc = subprocess.Popen(head + ["produce", f"--ring={ring_name}", "--events=20000",
                                        "--batch=32"], stdout=subprocess.PIPE, text=True)
        tables = list(consumer.arrow_batches())
        assert proc.wait(timeout=60) == 0
        table = pa.Table.from_batches(tables)
        assert table.num_rows == 20000
        back = np.zeros(20000, PEER_DTYPE)
        for name in ("sequence", "value", "price"):
            back[name] = table.column(name).to_numpy()
        back["text"] = table.column("text").to_pylist()
        assert check_peer_events(back, 0)
        consumer.close()
