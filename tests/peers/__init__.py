"""Harnesses for the real SIP peers the end-to-end tests run against.

- :mod:`tests.peers.kamailio`: a Kamailio registrar/proxy ("the PBX") from
  ``examples/kamailio.cfg``, and its location table (``ul.dump``) as Python objects.
- :mod:`tests.peers.sipp`: run the SIPp scenarios in ``tests/sipp/`` with a bounded timeout and
  read what they sent and received.
- :mod:`tests.peers.pjsua2_app`: drive ``examples/pjsua2_app.py`` (a pjsua2 "mobile app") as a
  subprocess that reports JSON events and takes commands.

Each harness fails the test (never skips it) when its peer is missing, naming
``bash scripts/test.sh``, which installs all of them.
"""
