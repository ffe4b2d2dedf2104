"""The energy suites' broker fixture, ``mosquitto_broker``, lives in tests/conftest.py.

It is the shared real mosquitto broker (restartable on the same port with
``stop()``/``start()``); its class is ``MosquittoBroker``, also exported there as
``Broker``, the name these suites annotate with.
"""
