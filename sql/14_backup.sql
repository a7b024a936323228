-- pg_dump skips rows of extension-owned tables unless they are marked here.
-- Rows the extension itself creates (branches, the default space, the built-in
-- user) are left out
-- so that a restore into a fresh CREATE EXTENSION does not collide with them.
-- (One statement per call: each call updates the pg_extension row.)
SELECT pg_catalog.pg_extension_config_dump('lamin."user"', 'WHERE id > 0');
SELECT pg_catalog.pg_extension_config_dump('lamin.storage', '');
SELECT pg_catalog.pg_extension_config_dump('lamin.transform', '');
SELECT pg_catalog.pg_extension_config_dump('lamin.run', '');
SELECT pg_catalog.pg_extension_config_dump('lamin.artifact', '');
SELECT pg_catalog.pg_extension_config_dump('lamin.collection', '');
SELECT pg_catalog.pg_extension_config_dump('lamin.collection_artifact', '');
SELECT pg_catalog.pg_extension_config_dump('lamin.feature', '');
SELECT pg_catalog.pg_extension_config_dump('lamin.schema', '');
SELECT pg_catalog.pg_extension_config_dump('lamin.schema_feature', '');
SELECT pg_catalog.pg_extension_config_dump('lamin.ulabel', '');
SELECT pg_catalog.pg_extension_config_dump('lamin.ulabel_parent', '');
SELECT pg_catalog.pg_extension_config_dump('lamin.artifact_ulabel', '');
SELECT pg_catalog.pg_extension_config_dump('lamin.artifact_feature_value', '');
SELECT pg_catalog.pg_extension_config_dump('lamin.artifact_schema', '');
SELECT pg_catalog.pg_extension_config_dump('lamin.run_input_artifact', '');
SELECT pg_catalog.pg_extension_config_dump('lamin.run_input_collection', '');
SELECT pg_catalog.pg_extension_config_dump('lamin.artifact_recreating_run', '');
SELECT pg_catalog.pg_extension_config_dump('lamin.collection_recreating_run', '');
SELECT pg_catalog.pg_extension_config_dump('lamin.space', 'WHERE id > 1');

-- Identity sequences, so a restored database numbers on after the restored rows.
SELECT pg_catalog.pg_extension_config_dump(pg_get_serial_sequence('lamin."user"', 'id')::regclass, '');
SELECT pg_catalog.pg_extension_config_dump(pg_get_serial_sequence('lamin.space', 'id')::regclass, '');
SELECT pg_catalog.pg_extension_config_dump(pg_get_serial_sequence('lamin.storage', 'id')::regclass, '');
SELECT pg_catalog.pg_extension_config_dump(pg_get_serial_sequence('lamin.transform', 'id')::regclass, '');
SELECT pg_catalog.pg_extension_config_dump(pg_get_serial_sequence('lamin.run', 'id')::regclass, '');
SELECT pg_catalog.pg_extension_config_dump(pg_get_serial_sequence('lamin.artifact', 'id')::regclass, '');
SELECT pg_catalog.pg_extension_config_dump(pg_get_serial_sequence('lamin.collection', 'id')::regclass, '');
SELECT pg_catalog.pg_extension_config_dump(pg_get_serial_sequence('lamin.feature', 'id')::regclass, '');
SELECT pg_catalog.pg_extension_config_dump(pg_get_serial_sequence('lamin.schema', 'id')::regclass, '');
SELECT pg_catalog.pg_extension_config_dump(pg_get_serial_sequence('lamin.ulabel', 'id')::regclass, '');
SELECT pg_catalog.pg_extension_config_dump(pg_get_serial_sequence('lamin.artifact_ulabel', 'id')::regclass, '');
SELECT pg_catalog.pg_extension_config_dump(pg_get_serial_sequence('lamin.artifact_feature_value', 'id')::regclass, '');
