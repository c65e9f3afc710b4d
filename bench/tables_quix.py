"""The same stateful count in Quix Streams (its RocksDB state, its changelog topics).

Run by bench_tables.py with the Quix Streams virtualenv's python (it never imports shoal):
    python bench/tables_quix.py BROKER GROUP SOURCE SINK STATE_DIR
"""

import sys

from quixstreams import Application


def main() -> None:
    broker, group, source_name, sink_name, state_dir = sys.argv[1:6]
    app = Application(
        broker_address=broker,
        consumer_group=group,
        auto_offset_reset="earliest",
        state_dir=state_dir,
        commit_interval=1.0,
        loglevel="WARNING",
    )
    source = app.topic(source_name, key_deserializer="bytes", value_deserializer="json")
    sink = app.topic(sink_name, key_serializer="bytes", value_serializer="json")

    def count(value, state):
        n = state.get("n", 0) + 1
        state.set("n", n)
        return n

    sdf = app.dataframe(source)
    sdf = sdf.apply(count, stateful=True)
    sdf.to_topic(sink)
    print("quix ready", flush=True)
    app.run()


if __name__ == "__main__":
    main()
