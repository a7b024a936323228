-- The job queue's rules, driven by hand through the sidecar-side functions:
-- claim order and leases, SKIP LOCKED, heartbeats, retries with back-off,
-- permanent failure, cancellation, release on shutdown, await_job, and the
-- pruning of finished jobs after their retention.
BEGIN;
SELECT plan(42);

SELECT lamin.enqueue('noop') AS j1 \gset
SELECT lamin.enqueue('noop', '{"n": 2}') AS j2 \gset
SELECT is((SELECT status FROM lamin.job WHERE id = :j1), 'queued', 'a new job is queued');
SELECT is((SELECT requested_by::text FROM lamin.job WHERE id = :j1), current_user::text, 'requested_by is the enqueuing role');
SELECT throws_like($$SELECT lamin.enqueue('nope')$$, '%unknown job kind ''nope''%', 'unknown kinds are refused, naming the known ones');
SELECT throws_like($$SELECT lamin.enqueue('noop', '[1]')$$, '%job_args_object%', 'args must be a JSON object');

-- Claims: oldest first, with a lease.
SELECT is((SELECT id FROM lamin.claim_job('w1', lamin.version(), 30)), :j1::bigint, 'the oldest job is claimed first');
SELECT results_eq(format('SELECT status, attempts, worker FROM lamin.job WHERE id = %s', :j1),
                  $$VALUES ('running', 1, 'w1')$$, 'claimed: running, one attempt, this worker');
SELECT is((SELECT id FROM lamin.claim_job('w2', lamin.version(), 30)), :j2::bigint, 'the next worker gets the next job');
SELECT is((SELECT count(*)::int FROM lamin.claim_job('w3', lamin.version(), 30)), 0, 'nothing left to claim');
SELECT ok(lamin.heartbeat_job(:j1, 'w1', 30, 5, 10), 'a heartbeat extends the lease');
SELECT is((SELECT progress_pct FROM lamin.jobs WHERE id = :j1), 50.0, 'lamin.jobs shows progress in percent');
SELECT ok(NOT lamin.heartbeat_job(:j1, 'w2', 30), 'another worker''s heartbeat is refused');
-- Stages: a heartbeat naming one sets the counts as given, none included.
SELECT ok(lamin.heartbeat_job(:j1, 'w1', 30, NULL, NULL, progress_stage => 'merging'), 'a heartbeat names a stage');
SELECT results_eq(format('SELECT progress_stage, progress_pct, progress_done FROM lamin.jobs WHERE id = %s', :j1),
                  $$VALUES ('merging', NULL::numeric, NULL::bigint)$$,
                  'a stage without a total shows no percent (not the last stage''s 50 %)');
SELECT ok(lamin.heartbeat_job(:j1, 'w1', 30), 'a heartbeat without a stage keeps it');
SELECT is((SELECT progress_stage FROM lamin.jobs WHERE id = :j1), 'merging', '… and lamin.jobs still shows it');
SELECT ok(lamin.complete_job(:j1, 'w1', '{"ok": true}'), 'complete');
SELECT is(lamin.await_job(:j1, 0), 'done', 'await_job returns the final status');
SELECT is((SELECT progress_stage FROM lamin.jobs WHERE id = :j1), NULL, 'a finished job shows no stage');
SELECT lamin.enqueue('noop') AS uncommitted \gset
SELECT throws_like(format('SELECT lamin.await_job(%s, 30)', :uncommitted), '%enqueued in this transaction%',
                   'awaiting a job this transaction enqueued fails at once instead of timing out');
SELECT lamin.cancel_job(:uncommitted);  -- out of the way of the claims below
SELECT ok(NOT lamin.complete_job(:j1, 'w1'), 'a job completes once');

-- An expired lease: another worker takes the job over.
UPDATE lamin.job SET lease_until = now() - interval '1 s' WHERE id = :j2;
SELECT is((SELECT id FROM lamin.claim_job('w3', lamin.version(), 30)), :j2::bigint, 'a job whose lease ran out is taken over');
SELECT is((SELECT attempts FROM lamin.job WHERE id = :j2), 2, '… as a second attempt');
SELECT ok(NOT lamin.complete_job(:j2, 'w2'), 'the first worker can no longer complete it');

-- Failures: retried with back-off, then failed; permanent errors fail at once.
SELECT lamin.enqueue('fail', max_attempts => 2) AS j3 \gset
SELECT id FROM lamin.claim_job('w1', lamin.version(), 30) \gset
SELECT is(lamin.fail_job(:j3, 'w1', 'transient'), 'queued', 'a failed attempt is queued again');
SELECT ok((SELECT run_after > now() FROM lamin.job WHERE id = :j3), '… after a back-off');
UPDATE lamin.job SET run_after = now() WHERE id = :j3;
SELECT id FROM lamin.claim_job('w1', lamin.version(), 30) \gset
SELECT is(lamin.fail_job(:j3, 'w1', 'transient again'), 'failed', 'the last attempt fails the job for good');
SELECT lamin.enqueue('fail') AS j4 \gset
SELECT id FROM lamin.claim_job('w1', lamin.version(), 30) \gset
SELECT is(lamin.fail_job(:j4, 'w1', 'bad input', permanent => true), 'failed', 'a permanent error fails at once');

-- Cancel and release.
SELECT lamin.enqueue('sleep') AS j5 \gset
SELECT id FROM lamin.claim_job('w9', lamin.version(), 30) \gset
SELECT is(lamin.cancel_job(:j5), 'cancelled', 'a running job can be cancelled');
SELECT ok(NOT lamin.heartbeat_job(:j5, 'w9', 30), '… and its worker hears of it at the next heartbeat');
SELECT lamin.enqueue('sleep') AS j6 \gset
SELECT id FROM lamin.claim_job('w8', lamin.version(), 30) \gset
SELECT is(lamin.release_jobs('w8'), 1, 'a stopping worker hands its running jobs back');

-- Batch claims: the n oldest.
UPDATE lamin.job SET status = 'done' WHERE status IN ('queued', 'running');
SELECT lamin.enqueue('noop') AS b1 \gset
SELECT lamin.enqueue('noop') AS b2 \gset
SELECT lamin.enqueue('noop') AS b3 \gset
SELECT is((SELECT array_agg(id ORDER BY id) FROM lamin.claim_job('w5', lamin.version(), 30, n => 2)), ARRAY[:b1, :b2]::bigint[],
          'claim_job(n => 2) takes the two oldest ready jobs');

-- A sidecar that does not speak the installed schema claims nothing.
SELECT throws_ok($$SELECT * FROM lamin.claim_job('w6', '0.0.1', 30)$$, '55000',
                 format('sidecar w6 speaks lamin 0.0.1, but the database''s lamin extension is now %s', lamin.version()),
                 'claim_job refuses a sidecar of another release');
SELECT throws_ok($$SELECT * FROM lamin.claim_job('w6', 30, NULL, 1)$$, '55000',
                 format('worker w6 does not say which lamin release it speaks (a sidecar older than 0.2.0?), and the database''s lamin extension is %s', lamin.version()),
                 'the claim of 0.1.0 sidecars (no version) is refused');
SELECT is((SELECT status FROM lamin.job WHERE id = :b3), 'queued', '… and neither took a job');
SELECT is((SELECT id FROM lamin.claim_job('w6', lamin.version(), 30)), :b3::bigint,
          'a sidecar of the installed release claims');

-- Retention: finished jobs are pruned, failed ones later; live ones never.
UPDATE lamin.job SET status = 'done', finished_at = now() WHERE status IN ('queued', 'running');
CREATE TEMP TABLE aged (name text PRIMARY KEY, id bigint);
INSERT INTO aged
SELECT x.name, lamin.enqueue('noop') FROM unnest(ARRAY['done_old', 'done_new', 'cancelled_old', 'failed_old',
    'failed_older', 'queued_old', 'running_old']) AS x(name);
UPDATE lamin.job j SET status = split_part(a.name, '_', 1), created_at = now() - interval '60 days',
       finished_at = CASE WHEN a.name IN ('queued_old', 'running_old') THEN NULL
                          WHEN a.name = 'done_new' THEN now() - interval '1 day'
                          WHEN a.name = 'failed_older' THEN now() - interval '31 days'
                          ELSE now() - interval '8 days' END
FROM aged a WHERE j.id = a.id;
SELECT is(lamin.prune_jobs(), 3::bigint, 'prune_jobs() removes done and cancelled jobs finished over 7 days ago, failed ones over 30 days ago');
SELECT is((SELECT array_agg(a.name ORDER BY a.name) FROM aged a JOIN lamin.job j ON j.id = a.id),
          ARRAY['done_new', 'failed_old', 'queued_old', 'running_old'], '… and keeps younger finished jobs and every live one');
SELECT throws_like(format('SELECT lamin.await_job(%s, 0)', (SELECT id FROM aged WHERE name = 'done_old')), 'no job %',
                   'awaiting a pruned job says it does not exist');
SELECT is(lamin.prune_jobs(interval '0', interval '0', max_rows => 1), 1::bigint, 'max_rows bounds one call (the oldest first)');
SELECT is((SELECT count(*)::int FROM aged a JOIN lamin.job j ON j.id = a.id WHERE a.name = 'failed_old'), 0, '… the oldest was the failed one');
SELECT throws_like($$SELECT lamin.prune_jobs(interval '-1 day')$$, '%job retention must be a duration of zero or more%',
                   'a negative retention is refused');
SET ROLE lamin_writer;
SELECT throws_like($$SELECT lamin.prune_jobs()$$, '%permission denied%', 'writers do not prune the queue (admins and the sidecar do)');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
