-- The router links a spoke's sub-request to its parent through the deliveries it has in flight, so the store no
-- longer looks up open tasks by trace id: the partial index that served that lookup only slowed task writes.
DROP INDEX IF EXISTS tasks_open_trace;
