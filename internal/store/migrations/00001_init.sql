-- One schema for SQLite and PostgreSQL. {{SERIAL_PK}} is replaced per
-- dialect (see migrations.go); everything else is portable SQL.
-- Times are BIGINT Unix nanoseconds (UTC); JSON values are TEXT.

-- +goose Up
CREATE TABLE labels (
    seq         {{SERIAL_PK}},
    uid         TEXT    NOT NULL UNIQUE,
    name        TEXT    NOT NULL,
    version     INTEGER NOT NULL,
    owner_name  TEXT    NOT NULL DEFAULT '',
    definitions TEXT    NOT NULL,
    metadata    TEXT,
    visible_for TEXT,
    remove_at   BIGINT,
    created_at  BIGINT  NOT NULL,
    CONSTRAINT labels_name_version UNIQUE (name, version)
);

CREATE TABLE applications (
    seq            {{SERIAL_PK}},
    uid            TEXT   NOT NULL UNIQUE,
    owner_name     TEXT   NOT NULL DEFAULT '',
    label_uid      TEXT   NOT NULL,
    metadata       TEXT,
    created_at     BIGINT NOT NULL,
    current_status TEXT   NOT NULL,
    status_at      BIGINT NOT NULL,
    node_name      TEXT   NOT NULL DEFAULT ''
);
CREATE INDEX applications_status ON applications (current_status, seq);
CREATE INDEX applications_owner ON applications (owner_name, seq);

CREATE TABLE application_states (
    seq             {{SERIAL_PK}},
    uid             TEXT   NOT NULL UNIQUE,
    application_uid TEXT   NOT NULL REFERENCES applications (uid) ON DELETE CASCADE,
    status          TEXT   NOT NULL,
    description     TEXT   NOT NULL DEFAULT '',
    created_at      BIGINT NOT NULL
);
CREATE INDEX application_states_app ON application_states (application_uid, seq);

CREATE TABLE resources (
    seq              {{SERIAL_PK}},
    uid              TEXT    NOT NULL UNIQUE,
    application_uid  TEXT    NOT NULL UNIQUE REFERENCES applications (uid) ON DELETE CASCADE,
    node_name        TEXT    NOT NULL DEFAULT '',
    label_uid        TEXT    NOT NULL DEFAULT '',
    definition_index INTEGER NOT NULL DEFAULT 0,
    identifier       TEXT    NOT NULL DEFAULT '',
    ip_addr          TEXT    NOT NULL DEFAULT '',
    hw_addr          TEXT    NOT NULL DEFAULT '',
    metadata         TEXT,
    timeout          BIGINT,
    authentication   TEXT,
    driver_data      TEXT,
    created_at       BIGINT  NOT NULL
);
CREATE INDEX resources_ip ON resources (ip_addr);
CREATE INDEX resources_node ON resources (node_name, seq);

CREATE TABLE application_tasks (
    seq             {{SERIAL_PK}},
    uid             TEXT   NOT NULL UNIQUE,
    application_uid TEXT   NOT NULL REFERENCES applications (uid) ON DELETE CASCADE,
    task            TEXT   NOT NULL,
    when_status     TEXT   NOT NULL,
    options         TEXT,
    result          TEXT,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);
CREATE INDEX application_tasks_app ON application_tasks (application_uid, seq);

CREATE TABLE users (
    name          TEXT   NOT NULL PRIMARY KEY,
    password_hash TEXT   NOT NULL,
    roles         TEXT   NOT NULL,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);

CREATE TABLE nodes (
    name        TEXT    NOT NULL PRIMARY KEY,
    address     TEXT    NOT NULL DEFAULT '',
    location    TEXT    NOT NULL DEFAULT '',
    maintenance INTEGER NOT NULL DEFAULT 0,
    updated_at  BIGINT  NOT NULL
);

-- +goose Down
DROP TABLE nodes;
DROP TABLE users;
DROP TABLE application_tasks;
DROP TABLE resources;
DROP TABLE application_states;
DROP TABLE applications;
DROP TABLE labels;
