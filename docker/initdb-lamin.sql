-- Run once by the postgres image when it creates the cluster.
CREATE EXTENSION IF NOT EXISTS lamin;
SELECT lamin.add_storage('/var/lib/lamin/storage', 'default local storage of this container');
