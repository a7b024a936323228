-- Run once by the postgres image when it creates the cluster.
CREATE EXTENSION IF NOT EXISTS lamin CASCADE;
SELECT lamin.add_storage('/var/lib/lamin/storage', 'default local storage of this container');
