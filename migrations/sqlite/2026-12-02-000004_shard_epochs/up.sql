-- The fencing epoch of each shard (DESIGN.md, "Cluster"): the etcd revision of the claim that
-- made its owner. An owner writes its epoch here before it serves the shard, and every write of
-- an owned entity checks it in the same transaction: a node whose claim was superseded finds a
-- greater epoch here and writes nothing. Empty on a single node.
CREATE TABLE shard_epochs (
    shard      INTEGER NOT NULL PRIMARY KEY CHECK (shard >= 0),
    epoch      BIGINT NOT NULL CHECK (epoch > 0),
    node_id    TEXT NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
