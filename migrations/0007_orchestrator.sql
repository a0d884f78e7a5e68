-- 0007_orchestrator: the task queue of arbiter.v1.Orchestrator (upstream
-- migration 002's task_queue and task_assignments, UPSTREAM.md §3), per
-- tenant, with forced row-level security.
--
-- The design follows graphile-worker, River, Oban, pg-boss and PGMQ:
--   * workers take tasks with ORDER BY priority, run_after, id LIMIT n
--     FOR NO KEY UPDATE SKIP LOCKED over a partial index of the QUEUED rows,
--     the LIMIT fenced in a MATERIALIZED CTE so it runs once; locked rows
--     are skipped, never waited for;
--   * a lease (token + expiry) per handed-out task; the server's
--     housekeeping takes expired leases back (QUEUED again, or DEAD when no
--     attempt is left);
--   * failures retry with exponential backoff and jitter, capped
--     (orchestrator_backoff); out of attempts a task is DEAD (the dead
--     letters), and RetryDeadTask queues it again;
--   * NOTIFY is only a wake-up hint, sent by the server outside the task
--     transactions (debounced per tenant, so commits never queue on the
--     notification lock); what changed is read from task_events, an outbox
--     written by a trigger in the same transaction as the change.
-- Ids are uuid from gen_random_uuid(); every key starts with tenant_id.

-- Per-tenant queue settings, written by Admin.SetQueueCapacity (which sets
-- app.current_tenant for its own transaction) and read by every enqueue.
-- No row means the default capacity, 1,000 QUEUED tasks.
CREATE TABLE queue_settings (
    tenant_id  text NOT NULL
               DEFAULT NULLIF(current_setting('app.current_tenant', true), '')
               REFERENCES tenants (id),
    capacity   integer NOT NULL CONSTRAINT capacity CHECK (capacity BETWEEN 0 AND 100000000),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id)
);

-- CHECK constraints are named after the EnqueueTask request field they
-- guard ("task.priority"): a violation answers INVALID_ARGUMENT naming it.
CREATE TABLE tasks (
    tenant_id        text NOT NULL
                     DEFAULT NULLIF(current_setting('app.current_tenant', true), '')
                     REFERENCES tenants (id),
    id               uuid NOT NULL DEFAULT gen_random_uuid(),
    task_type        text NOT NULL
                     CONSTRAINT "task.task_type" CHECK (char_length(task_type) BETWEEN 1 AND 255),
    priority         integer NOT NULL DEFAULT 5
                     CONSTRAINT "task.priority" CHECK (priority BETWEEN 1 AND 10),
    payload_json     jsonb NOT NULL DEFAULT '{}'
                     CONSTRAINT "task.payload_json" CHECK (jsonb_typeof(payload_json) = 'object'),
    status           text NOT NULL DEFAULT 'QUEUED'
                     CHECK (status IN ('QUEUED', 'LEASED', 'COMPLETED', 'FAILED', 'DEAD',
                                       'CANCELLED')),
    attempts         integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    max_attempts     integer NOT NULL DEFAULT 3
                     CONSTRAINT "task.max_attempts" CHECK (max_attempts BETWEEN 1 AND 100),
    timeout_ms       integer NOT NULL DEFAULT 30000
                     CONSTRAINT "task.timeout_ms" CHECK (timeout_ms BETWEEN 1 AND 86400000),
    run_after        timestamptz NOT NULL DEFAULT now(),
    lease_token      uuid,
    lease_expires_at timestamptz,
    leased_by        text,
    leased_at        timestamptz,
    idempotency_key  text CONSTRAINT "task.idempotency_key"
                     CHECK (char_length(idempotency_key) BETWEEN 1 AND 255),
    last_error       text,
    result_json      jsonb,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    finished_at      timestamptz,           -- COMPLETED, DEAD or CANCELLED since
    last_failed_at   timestamptz,           -- FailTask or a rescued lease
    last_rescued_at  timestamptz,
    rescues          integer NOT NULL DEFAULT 0,
    budget_max_files integer NOT NULL DEFAULT 40
                     CONSTRAINT "task.budget_max_files" CHECK (budget_max_files >= 0),
    budget_max_loc   integer NOT NULL DEFAULT 1500
                     CONSTRAINT "task.budget_max_loc" CHECK (budget_max_loc >= 0),
    PRIMARY KEY (tenant_id, id),
    -- A lease is exactly a token and an expiry on a LEASED task.
    CONSTRAINT lease CHECK ((status = 'LEASED') = (lease_token IS NOT NULL
                                                   AND lease_expires_at IS NOT NULL))
);

-- One task per idempotency key and tenant (keys are optional).
CREATE UNIQUE INDEX tasks_idempotency_key_idx ON tasks (tenant_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;

-- The dequeue: only QUEUED rows, in the order handed out (priority 10
-- first, then run_after, then id). Small even when the table is large,
-- since finished tasks leave it. EXPLAIN of the dequeue with 10,000 tasks
-- in 10 tenants: "Index Scan using tasks_available_idx" with the tenant as
-- the index condition, run_after and task_type as filters, no sort, under
-- LockRows and Limit.
CREATE INDEX tasks_available_idx ON tasks (tenant_id, priority DESC, run_after, id)
    WHERE status = 'QUEUED';

-- The rescue of expired leases: only LEASED rows.
CREATE INDEX tasks_leases_idx ON tasks (tenant_id, lease_expires_at) WHERE status = 'LEASED';

-- ListTasks, newest first, keyset pages on (created_at, id).
CREATE INDEX tasks_created_idx ON tasks (tenant_id, created_at, id);

-- Every state change updates the row and its index entries (status is in
-- the partial indexes' predicates, so no update is HOT): vacuum the hot
-- table early and often rather than at the default 20 % of dead rows.
ALTER TABLE tasks SET (autovacuum_vacuum_scale_factor = 0.02, autovacuum_vacuum_threshold = 1000,
                       autovacuum_analyze_scale_factor = 0.05,
                       autovacuum_vacuum_insert_scale_factor = 0.05);

-- The outbox WatchQueue reads: one row per state change, written in the
-- transaction that made it. xid is that transaction's id: a reader keeps
-- the snapshot of its last read and takes exactly the rows that snapshot
-- could not see (pg_visible_in_snapshot), so a change is read once, after
-- its commit, whatever the commit order; rows of one task are in seq
-- order, the order of their commits. Pruned by the housekeeping after a
-- minute. No foreign key to tasks: it is a log, and the check would cost
-- every change a lookup.
CREATE TABLE task_events (
    tenant_id text NOT NULL
              DEFAULT NULLIF(current_setting('app.current_tenant', true), '')
              REFERENCES tenants (id),
    seq       bigint GENERATED ALWAYS AS IDENTITY,
    xid       xid8 NOT NULL DEFAULT pg_current_xact_id(),
    task_id   uuid NOT NULL,
    task_type text NOT NULL,
    status    text NOT NULL,
    at        timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, seq)
);

-- The reader's range: transactions from the last snapshot's xmin on.
CREATE INDEX task_events_xid_idx ON task_events (tenant_id, xid);

ALTER TABLE task_events SET (autovacuum_vacuum_scale_factor = 0.02,
                             autovacuum_vacuum_threshold = 1000,
                             autovacuum_vacuum_insert_scale_factor = 0.05);

-- Assignments of tasks to AgentRegistry agents. The foreign keys are named
-- after the request fields: an unknown task or agent (or another
-- tenant's: the keys include tenant_id) is FAILED_PRECONDITION.
CREATE TABLE task_assignments (
    tenant_id        text NOT NULL
                     DEFAULT NULLIF(current_setting('app.current_tenant', true), '')
                     REFERENCES tenants (id),
    id               uuid NOT NULL DEFAULT gen_random_uuid(),
    task_id          uuid NOT NULL,
    agent_id         uuid NOT NULL,
    routing_strategy text NOT NULL
                     CHECK (routing_strategy IN ('EPSILON_GREEDY', 'UCB', 'CAPABILITY_MATCH',
                                                 'LOAD_BALANCE')),
    status           text NOT NULL DEFAULT 'ASSIGNED'
                     CHECK (status IN ('ASSIGNED', 'ACKNOWLEDGED', 'EXECUTING', 'COMPLETED',
                                       'FAILED', 'CANCELLED')),
    assigned_at      timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    CONSTRAINT task_id FOREIGN KEY (tenant_id, task_id) REFERENCES tasks (tenant_id, id),
    CONSTRAINT agent_id FOREIGN KEY (tenant_id, agent_id) REFERENCES agents (tenant_id, id)
        ON DELETE CASCADE
);

-- At most one assignment in progress per task.
CREATE UNIQUE INDEX task_assignments_active_idx ON task_assignments (tenant_id, task_id)
    WHERE status IN ('ASSIGNED', 'ACKNOWLEDGED', 'EXECUTING');
-- The cascade when an agent is unregistered.
CREATE INDEX task_assignments_agent_idx ON task_assignments (tenant_id, agent_id);

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['queue_settings', 'tasks', 'task_events', 'task_assignments'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format($p$CREATE POLICY tenant_isolation ON %I
            USING (tenant_id = (SELECT NULLIF(current_setting('app.current_tenant', true), '')))
            WITH CHECK (tenant_id = (SELECT NULLIF(current_setting('app.current_tenant', true), '')))$p$,
            t);
    END LOOP;
END
$$;

-- ---- the outbox ---------------------------------------------------------

-- New tasks: one statement-level trigger, so a batch of 1,000 is one INSERT.
CREATE FUNCTION orchestrator_tasks_inserted() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    INSERT INTO task_events (tenant_id, task_id, task_type, status, at)
    SELECT n.tenant_id, n.id, n.task_type, n.status, n.updated_at FROM new_rows n;
    RETURN NULL;
END
$$;

CREATE TRIGGER tasks_inserted AFTER INSERT ON tasks
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION orchestrator_tasks_inserted();

-- Status changes: a row trigger with a column list and a WHEN clause, so
-- a heartbeat (no status change) never runs it.
CREATE FUNCTION orchestrator_task_status_changed() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    INSERT INTO task_events (tenant_id, task_id, task_type, status, at)
    VALUES (NEW.tenant_id, NEW.id, NEW.task_type, NEW.status, NEW.updated_at);
    RETURN NULL;
END
$$;

CREATE TRIGGER tasks_status_changed AFTER UPDATE OF status ON tasks
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status)
    EXECUTE FUNCTION orchestrator_task_status_changed();

-- ---- the methods' functions ---------------------------------------------

-- EnqueueTask and EnqueueTasks: |p_tasks| is a JSON array of Task messages
-- (the request's own fields; the server's fields are ignored). Returns one
-- task per element, in order: the new task, or the existing one when its
-- idempotency key is taken (also by an earlier element of the batch).
-- Enqueues of one tenant take turns on a transaction-level advisory lock,
-- so the capacity (QUEUED tasks) is exact under concurrency and a key
-- lookup sees every earlier enqueue; dequeues never take it. Over
-- capacity: SQLSTATE 53400, RESOURCE_EXHAUSTED.
CREATE FUNCTION orchestrator_enqueue(p_tasks jsonb) RETURNS SETOF tasks
LANGUAGE plpgsql
AS $$
DECLARE
    v_cap integer;
    v_new integer;
    v_queued integer;
BEGIN
    PERFORM pg_advisory_xact_lock(1953066341,
        hashtext(COALESCE(current_setting('app.current_tenant', true), '')));
    SELECT COALESCE((SELECT capacity FROM queue_settings), 1000) INTO v_cap;
    SELECT count(DISTINCT (i.k, CASE WHEN i.k IS NULL THEN i.ord END)) INTO v_new
    FROM (SELECT NULLIF(e.j->>'idempotency_key', '') AS k, e.ord
          FROM jsonb_array_elements(p_tasks) WITH ORDINALITY AS e(j, ord)) i
    WHERE i.k IS NULL OR NOT EXISTS (SELECT 1 FROM tasks t WHERE t.idempotency_key = i.k);
    IF v_new > 0 THEN
        -- Counting stops past what could still fit.
        SELECT count(*) INTO v_queued
        FROM (SELECT 1 FROM tasks WHERE status = 'QUEUED' LIMIT GREATEST(v_cap - v_new + 1, 0)) q;
        IF v_new > v_cap - v_queued THEN
            RAISE EXCEPTION 'task queue at capacity (%)', v_cap
                USING ERRCODE = 'configuration_limit_exceeded';
        END IF;
    END IF;
    RETURN QUERY
    WITH input AS MATERIALIZED (
        SELECT e.ord, gen_random_uuid() AS id, NULLIF(e.j->>'idempotency_key', '') AS k, e.j
        FROM jsonb_array_elements(p_tasks) WITH ORDINALITY AS e(j, ord)
    ), ins AS (
        INSERT INTO tasks AS t (id, task_type, priority, payload_json, max_attempts, timeout_ms,
                                run_after, idempotency_key, budget_max_files, budget_max_loc)
        SELECT i.id, i.j->>'task_type',
               COALESCE(NULLIF((i.j->>'priority')::integer, 0), 5),
               COALESCE(NULLIF(i.j->>'payload_json', ''), '{}')::jsonb,
               COALESCE(NULLIF((i.j->>'max_attempts')::integer, 0), 3),
               COALESCE(NULLIF((i.j->>'timeout_ms')::integer, 0), 30000),
               COALESCE((i.j->>'run_after')::timestamptz, now()),
               i.k,
               COALESCE(NULLIF((i.j->>'budget_max_files')::integer, 0), 40),
               COALESCE(NULLIF((i.j->>'budget_max_loc')::integer, 0), 1500)
        FROM input i ORDER BY i.ord
        ON CONFLICT (tenant_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
        RETURNING t.*
    )
    SELECT r.* FROM input i CROSS JOIN LATERAL (
        SELECT ins.* FROM ins WHERE ins.id = i.id
        UNION ALL
        SELECT ins.* FROM ins WHERE i.k IS NOT NULL AND ins.idempotency_key = i.k
        UNION ALL
        SELECT t.* FROM tasks t WHERE i.k IS NOT NULL AND t.idempotency_key = i.k
        LIMIT 1
    ) r
    ORDER BY i.ord;
END
$$;

-- The retry delay after the |attempts|-th failed attempt (attempts >= 1):
--   min(600 s, 1 s * 2^(attempts - 1)) * uniform(0.5, 1)
-- exponential, capped at ten minutes, with "equal jitter" so that tasks
-- that failed together do not come back together.
CREATE FUNCTION orchestrator_backoff(attempts integer) RETURNS interval
LANGUAGE sql VOLATILE
AS $$
    SELECT LEAST(600000.0, 1000.0 * power(2.0, GREATEST(attempts, 1) - 1))
           * (0.5 + random() / 2) * interval '1 millisecond'
$$;

-- Raised when a task exists but its lease does not hold (wrong token,
-- expired, or the task is no longer LEASED): SQLSTATE 55000,
-- FAILED_PRECONDITION "lease lost". A task that does not exist (or is
-- another tenant's) raises nothing: the caller answers NOT_FOUND.
CREATE FUNCTION orchestrator_check_task(p_id uuid, p_why text) RETURNS void
LANGUAGE plpgsql
AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM tasks WHERE id = p_id) THEN
        RAISE EXCEPTION '%', p_why USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
END
$$;

-- Heartbeat, CompleteTask and FailTask need the lease: the task LEASED,
-- the token its token, the expiry still ahead.
CREATE FUNCTION orchestrator_heartbeat(p_id uuid, p_token uuid, p_extend_ms integer)
RETURNS SETOF tasks
LANGUAGE plpgsql
AS $$
BEGIN
    RETURN QUERY
    WITH u AS (
        UPDATE tasks SET lease_expires_at = now() + COALESCE(NULLIF(p_extend_ms, 0), timeout_ms)
                                                    * interval '1 millisecond',
                         updated_at = now()
        WHERE id = p_id AND status = 'LEASED' AND lease_token = p_token
          AND lease_expires_at > now()
        RETURNING *
    ) SELECT * FROM u;
    IF NOT FOUND THEN
        PERFORM orchestrator_check_task(p_id, 'lease lost');
    END IF;
END
$$;

CREATE FUNCTION orchestrator_complete(p_id uuid, p_token uuid, p_result text)
RETURNS SETOF tasks
LANGUAGE plpgsql
AS $$
BEGIN
    RETURN QUERY
    WITH u AS (
        UPDATE tasks SET status = 'COMPLETED', result_json = NULLIF(p_result, '')::jsonb,
                         finished_at = now(), updated_at = now(),
                         lease_token = NULL, lease_expires_at = NULL
        WHERE id = p_id AND status = 'LEASED' AND lease_token = p_token
          AND lease_expires_at > now()
        RETURNING *
    ) SELECT * FROM u;
    IF NOT FOUND THEN
        PERFORM orchestrator_check_task(p_id, 'lease lost');
    END IF;
END
$$;

-- Retryable with attempts left: QUEUED again after the backoff; else DEAD.
CREATE FUNCTION orchestrator_fail(p_id uuid, p_token uuid, p_error text, p_retryable boolean)
RETURNS SETOF tasks
LANGUAGE plpgsql
AS $$
BEGIN
    RETURN QUERY
    WITH u AS (
        UPDATE tasks SET
            status = CASE WHEN p_retryable AND attempts < max_attempts THEN 'QUEUED' ELSE 'DEAD' END,
            run_after = CASE WHEN p_retryable AND attempts < max_attempts
                             THEN now() + orchestrator_backoff(attempts) ELSE run_after END,
            finished_at = CASE WHEN p_retryable AND attempts < max_attempts THEN NULL ELSE now() END,
            last_error = NULLIF(p_error, ''), last_failed_at = now(), updated_at = now(),
            lease_token = NULL, lease_expires_at = NULL
        WHERE id = p_id AND status = 'LEASED' AND lease_token = p_token
          AND lease_expires_at > now()
        RETURNING *
    ) SELECT * FROM u;
    IF NOT FOUND THEN
        PERFORM orchestrator_check_task(p_id, 'lease lost');
    END IF;
END
$$;

-- QUEUED, LEASED (the lease ends: the worker's next call is "lease lost")
-- and DEAD tasks become CANCELLED; a CANCELLED task stays as it is; a
-- COMPLETED one cannot be cancelled (FAILED_PRECONDITION).
CREATE FUNCTION orchestrator_cancel(p_id uuid) RETURNS SETOF tasks
LANGUAGE plpgsql
AS $$
BEGIN
    RETURN QUERY
    WITH u AS (
        UPDATE tasks SET status = 'CANCELLED', finished_at = now(), updated_at = now(),
                         lease_token = NULL, lease_expires_at = NULL
        WHERE id = p_id AND status IN ('QUEUED', 'LEASED', 'FAILED', 'DEAD')
        RETURNING *
    ) SELECT * FROM u;
    IF NOT FOUND THEN
        RETURN QUERY SELECT * FROM tasks WHERE id = p_id AND status = 'CANCELLED';
        IF NOT FOUND THEN
            PERFORM orchestrator_check_task(p_id, 'task already completed');
        END IF;
    END IF;
END
$$;

-- A DEAD task is QUEUED again, now, with its attempts reset.
CREATE FUNCTION orchestrator_retry_dead(p_id uuid) RETURNS SETOF tasks
LANGUAGE plpgsql
AS $$
BEGIN
    RETURN QUERY
    WITH u AS (
        UPDATE tasks SET status = 'QUEUED', attempts = 0, run_after = now(), finished_at = NULL,
                         updated_at = now()
        WHERE id = p_id AND status = 'DEAD'
        RETURNING *
    ) SELECT * FROM u;
    IF NOT FOUND THEN
        PERFORM orchestrator_check_task(p_id, 'task is not DEAD');
    END IF;
END
$$;

-- Assignments move forward only: ASSIGNED < ACKNOWLEDGED < EXECUTING <
-- COMPLETED, FAILED or CANCELLED (final). Reaching a final status gives
-- the agent's slot back (active_tasks - 1), in the same transaction. Locks
-- the assignment, then the agent's load row: the order AssignTask uses.
CREATE FUNCTION orchestrator_update_assignment(p_id uuid, p_status text)
RETURNS SETOF task_assignments
LANGUAGE plpgsql
AS $$
DECLARE
    v_old task_assignments;
    v_rank CONSTANT jsonb := '{"ASSIGNED": 1, "ACKNOWLEDGED": 2, "EXECUTING": 3, "COMPLETED": 4,
                              "FAILED": 4, "CANCELLED": 4}';
BEGIN
    SELECT * INTO v_old FROM task_assignments WHERE id = p_id FOR UPDATE;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    IF (v_rank->>p_status)::integer <= (v_rank->>v_old.status)::integer THEN
        RAISE EXCEPTION 'assignments move forward only'
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    IF (v_rank->>p_status)::integer = 4 THEN
        UPDATE agent_load SET active_tasks = GREATEST(active_tasks - 1, 0)
        WHERE agent_id = v_old.agent_id;
    END IF;
    RETURN QUERY
    WITH u AS (
        UPDATE task_assignments SET status = p_status, updated_at = now() WHERE id = p_id
        RETURNING *
    ) SELECT * FROM u;
END
$$;

-- ---- housekeeping --------------------------------------------------------

-- Which tenants have expired leases to rescue or outbox rows to prune.
-- Forced row-level security hides every tenant's rows unless
-- app.current_tenant names it, so the function looks at one tenant at a
-- time (an index probe each) and returns tenant ids only, never rows. It
-- puts the caller's tenant setting back before it returns (a SET clause
-- would do that, but PostgreSQL 15 lets only superusers put a custom
-- setting there).
CREATE FUNCTION orchestrator_due_tenants(p_retention_ms bigint) RETURNS SETOF text
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, public
AS $$
DECLARE
    v_caller text := current_setting('app.current_tenant', true);
    v_tenant text;
BEGIN
    FOR v_tenant IN SELECT id FROM tenants ORDER BY id LOOP
        PERFORM set_config('app.current_tenant', v_tenant, true);
        IF EXISTS (SELECT 1 FROM tasks WHERE status = 'LEASED' AND lease_expires_at <= now())
           OR (SELECT at FROM task_events ORDER BY seq LIMIT 1)
              < now() - p_retention_ms * interval '1 millisecond' THEN
            RETURN NEXT v_tenant;
        END IF;
    END LOOP;
    PERFORM set_config('app.current_tenant', COALESCE(v_caller, ''), true);
END
$$;

-- The rescue, in the tenant's own transaction: expired leases go back to
-- QUEUED (keeping their place in the order), or to DEAD when no attempt is
-- left. Leases being completed right now are locked and skipped: their
-- holder's call decides.
CREATE FUNCTION orchestrator_rescue(p_limit integer) RETURNS SETOF tasks
LANGUAGE sql
AS $$
    WITH expired AS MATERIALIZED (
        SELECT tenant_id, id FROM tasks
        WHERE status = 'LEASED' AND lease_expires_at <= now()
        ORDER BY lease_expires_at
        LIMIT p_limit
        FOR NO KEY UPDATE SKIP LOCKED
    )
    UPDATE tasks t SET
        status = CASE WHEN t.attempts < t.max_attempts THEN 'QUEUED' ELSE 'DEAD' END,
        finished_at = CASE WHEN t.attempts < t.max_attempts THEN NULL ELSE now() END,
        last_error = 'lease expired', last_failed_at = now(), last_rescued_at = now(),
        rescues = t.rescues + 1, updated_at = now(), lease_token = NULL, lease_expires_at = NULL
    FROM expired e
    WHERE t.tenant_id = e.tenant_id AND t.id = e.id
    RETURNING t.*
$$;

-- Outbox rows older than the retention, oldest first (rows are in seq
-- order, so the scan stops at the first one that stays).
CREATE FUNCTION orchestrator_prune_events(p_retention_ms bigint) RETURNS bigint
LANGUAGE sql
AS $$
    WITH gone AS (
        DELETE FROM task_events
        WHERE seq < COALESCE((SELECT seq FROM task_events
                              WHERE at >= now() - p_retention_ms * interval '1 millisecond'
                              ORDER BY seq LIMIT 1),
                             (SELECT max(seq) + 1 FROM task_events))
        RETURNING 1
    ) SELECT count(*) FROM gone
$$;

-- ---- rights --------------------------------------------------------------

-- Rows only, and only what the handlers do: tasks and assignments are
-- never deleted; the outbox is appended to by the triggers and pruned by
-- the housekeeping.
CALL arbiter_grant_app('SELECT, INSERT, UPDATE', 'TABLE queue_settings');
CALL arbiter_grant_app('SELECT, INSERT, UPDATE', 'TABLE tasks');
CALL arbiter_grant_app('SELECT, INSERT, DELETE', 'TABLE task_events');
CALL arbiter_grant_app('SELECT, INSERT, UPDATE', 'TABLE task_assignments');

DO $$
DECLARE
    f text;
BEGIN
    FOREACH f IN ARRAY ARRAY['orchestrator_tasks_inserted()', 'orchestrator_task_status_changed()',
                             'orchestrator_enqueue(jsonb)', 'orchestrator_backoff(integer)',
                             'orchestrator_check_task(uuid, text)',
                             'orchestrator_heartbeat(uuid, uuid, integer)',
                             'orchestrator_complete(uuid, uuid, text)',
                             'orchestrator_fail(uuid, uuid, text, boolean)',
                             'orchestrator_cancel(uuid)', 'orchestrator_retry_dead(uuid)',
                             'orchestrator_update_assignment(uuid, text)',
                             'orchestrator_due_tenants(bigint)', 'orchestrator_rescue(integer)',
                             'orchestrator_prune_events(bigint)'] LOOP
        EXECUTE format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', f);
        CALL arbiter_grant_app('EXECUTE', 'FUNCTION ' || f);
    END LOOP;
END
$$;
