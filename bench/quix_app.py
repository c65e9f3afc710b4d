"""The comparison's stateless workloads in Quix Streams (the stateful one is tables_quix.py).

Run by compare.py with the Quix Streams virtualenv's python (it never imports shoal)::

    python bench/quix_app.py WORKLOAD BROKER GROUP SOURCE SINK STATE_DIR [GROUP_KEYS]

WORKLOAD is ``adding`` (JSON ``{"a", "b"}`` in, ``a + b`` out) or ``groupby`` (the same after
a group_by on ``str(a % GROUP_KEYS)``, through Quix's repartition topic). At-least-once
(Quix's default processing guarantee), commits every second like the other systems.
"""

import sys

from quixstreams import Application


def main() -> None:
    workload, broker, group, source_name, sink_name, state_dir = sys.argv[1:7]
    keys = int(sys.argv[7]) if len(sys.argv) > 7 else 1000
    app = Application(
        broker_address=broker,
        consumer_group=group,
        auto_offset_reset="earliest",
        state_dir=state_dir,
        commit_interval=1.0,
        loglevel="WARNING",
    )
    source = app.topic(source_name, value_deserializer="json")
    sink = app.topic(sink_name, value_serializer="json")
    sdf = app.dataframe(source)
    if workload == "groupby":
        sdf = sdf.group_by(lambda value: str(value["a"] % keys), name="k")
    elif workload != "adding":
        raise SystemExit(f"unknown workload {workload!r}")
    sdf = sdf.apply(lambda value: value["a"] + value["b"])
    sdf.to_topic(sink)
    print("quix ready", flush=True)
    app.run()


if __name__ == "__main__":
    main()
