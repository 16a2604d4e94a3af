DROP TABLE shard_epochs;
