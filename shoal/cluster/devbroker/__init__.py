"""The development and CI Kafka broker behind ``clusterctl kafka`` (see ``broker.py``)."""
