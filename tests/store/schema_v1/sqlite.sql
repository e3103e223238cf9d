-- TEST FIXTURE: sql/sqlite/schema.sql as it was at schema version 1 (sipush commit dfaf89f),
-- verbatim below this header. tests/store/storekit.py: create_v1_database builds a version-1
-- database from it to test that BindingStore.open upgrades it in place. Never edit it.
--
-- sipush binding store, SQLite. Schema version 1.
--
-- The source of truth for the schema: `BindingStore.open` runs this file (each statement, in
-- one transaction) when the database has no `bindings` table yet, and
-- tests/store/test_schema.py proves it matches sipush/store/tables.py.
--
-- SQLite has no date type: timestamps are UTC as fixed-width text, '2026-11-22 10:00:00.000000',
-- so that text order is time order. Booleans are 0/1.

CREATE TABLE bindings (
    aor                TEXT     NOT NULL,  -- sip:alice@example.com (SipUri.aor of the To)
    device_id          TEXT     NOT NULL,  -- +sip.instance, else X-Push device-uid, else pn-prid
    contact            TEXT     NOT NULL,  -- the Contact URI the PBX returned in its 2xx
    expires_at         DATETIME NOT NULL,  -- UTC
    registered_at      DATETIME NOT NULL,  -- UTC, last successful REGISTER
    created_at         DATETIME NOT NULL,  -- UTC, first time this device was bound
    transport          TEXT     NOT NULL,  -- udp | tcp | tls: the app's flow
    flow_local         TEXT     NOT NULL,  -- sipush's side of the flow, 127.0.0.1:5060
    flow_remote        TEXT     NOT NULL,  -- the app's side of the flow, 127.0.0.1:40111
    call_id            TEXT     NOT NULL,  -- of the REGISTER
    cseq               INTEGER  NOT NULL,  -- of the REGISTER (RFC 3261 §8.1.1.5: < 2**31)
    user_agent         TEXT,
    -- push info (RFC 8599 pn-*, X-Push, legacy pn-tok); all NULL when the app sent none
    provider           TEXT,               -- apns | fcm | webpush
    prid               TEXT,               -- the push token
    param              TEXT,               -- RFC 8599 pn-param
    app_id             TEXT,
    platform           TEXT,               -- ios | android | web
    device_uid         TEXT,               -- X-Push device-uid as sent
    alert_token        TEXT,               -- iOS second (alert) token
    allow_call_push    BOOLEAN,
    allow_message_push BOOLEAN,
    push_source        TEXT,               -- x-push | rfc8599 | legacy
    CONSTRAINT bindings_pkey PRIMARY KEY (aor, device_id)
);

CREATE INDEX bindings_expires_at ON bindings (expires_at);

CREATE TABLE schema_version (
    version INTEGER NOT NULL
);

INSERT INTO schema_version (version) VALUES (1);
