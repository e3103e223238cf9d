-- sipush binding store, PostgreSQL. Schema version 2.
--
-- The source of truth for the schema: `BindingStore.open` runs this file (each statement, in
-- one transaction, under an advisory lock so that concurrent first starts do not race) when
-- the schema on the connection's search_path has no `bindings` table yet, and
-- tests/store/test_schema.py proves it matches sipush/store/tables.py.
--
-- Version 1 had `bindings` and `schema_version`; version 2 added `pushes`. `open` upgrades a
-- version-1 database in place by running this file's CREATE statements for `pushes` and its
-- indexes (sipush/store/tables.py: ADDED_TABLES), then setting the version, in one transaction
-- under the same advisory lock.
--
-- Timestamps are TIMESTAMP WITH TIME ZONE (stored as UTC instants).

CREATE TABLE bindings (
    aor                TEXT        NOT NULL,  -- sip:alice@example.com (SipUri.aor of the To)
    device_id          TEXT        NOT NULL,  -- +sip.instance, else X-Push device-uid, else pn-prid
    contact            TEXT        NOT NULL,  -- the Contact URI the PBX returned in its 2xx
    expires_at         TIMESTAMPTZ NOT NULL,
    registered_at      TIMESTAMPTZ NOT NULL,  -- last successful REGISTER
    created_at         TIMESTAMPTZ NOT NULL,  -- first time this device was bound
    transport          TEXT        NOT NULL,  -- udp | tcp | tls: the app's flow
    flow_local         TEXT        NOT NULL,  -- sipush's side of the flow, 127.0.0.1:5060
    flow_remote        TEXT        NOT NULL,  -- the app's side of the flow, 127.0.0.1:40111
    call_id            TEXT        NOT NULL,  -- of the REGISTER
    cseq               INTEGER     NOT NULL,  -- of the REGISTER (RFC 3261 §8.1.1.5: < 2**31)
    user_agent         TEXT,
    -- push info (RFC 8599 pn-*, X-Push, legacy pn-tok); all NULL when the app sent none
    provider           TEXT,                  -- apns | fcm | webpush
    prid               TEXT,                  -- the push token
    param              TEXT,                  -- RFC 8599 pn-param
    app_id             TEXT,
    platform           TEXT,                  -- ios | android | web
    device_uid         TEXT,                  -- X-Push device-uid as sent
    alert_token        TEXT,                  -- iOS second (alert) token
    allow_call_push    BOOLEAN,
    allow_message_push BOOLEAN,
    push_source        TEXT,                  -- x-push | rfc8599 | legacy
    CONSTRAINT bindings_pkey PRIMARY KEY (aor, device_id)
);

CREATE INDEX bindings_expires_at ON bindings (expires_at);

-- One row per push sent (sipush/store/model.py: PushRecord); kept for 7 days
-- (BindingStore.purge_expired).
CREATE TABLE pushes (
    id              BIGINT           GENERATED ALWAYS AS IDENTITY,
    aor             TEXT             NOT NULL,  -- the binding pushed: AOR ...
    device_id       TEXT             NOT NULL,  -- ... and device (as in bindings)
    kind            TEXT             NOT NULL,  -- incomingCall | cancelIncomingCall | ...
    provider        TEXT             NOT NULL,  -- apns | fcm | webpush
    outcome         TEXT             NOT NULL,  -- delivered | retry | token-invalid | failed
    status          INTEGER,                    -- the push service's HTTP status, e.g. 410
    reason          TEXT,                       -- its reason, e.g. Unregistered
    call_id         TEXT,                       -- the SIP Call-ID the push was about
    sent_at         TIMESTAMPTZ      NOT NULL,  -- when the (first) push request went out
    latency_ms      DOUBLE PRECISION NOT NULL,  -- SIP request reaching sipush -> the answer
    attempts        INTEGER          NOT NULL,  -- push requests it took (1 without retries)
    reregistered_at TIMESTAMPTZ,                -- when the woken device's REGISTER was accepted
    CONSTRAINT pushes_pkey PRIMARY KEY (id)
);

CREATE INDEX pushes_aor_sent_at ON pushes (aor, sent_at);

CREATE INDEX pushes_aor_device_sent_at ON pushes (aor, device_id, sent_at);

CREATE INDEX pushes_sent_at ON pushes (sent_at);  -- the retention purge

CREATE TABLE schema_version (
    version INTEGER NOT NULL
);

INSERT INTO schema_version (version) VALUES (2);
