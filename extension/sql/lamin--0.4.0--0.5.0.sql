\echo Use "ALTER EXTENSION lamin UPDATE TO '0.5.0'" to load this file. \quit
-- lamin 0.4.0 → 0.5.0 (issue 16, the daily loop). Run by ALTER EXTENSION lamin
-- UPDATE in one transaction (all or nothing). Definitions are copied verbatim
-- from sql/ and from what `cargo pgrx schema` prints (the upgrade test compares
-- the result with a fresh install object by object). Each concern has its own
-- section below.

-- == search: letter/digit tokens, general terms first, the guard's probe ==

-- == saving: de-duplication within what the caller can read ==

-- == curation, annotation, jobs, views and errors ==
