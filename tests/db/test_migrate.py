"""`arbiterd migrate` (issue 3 §7): a fresh database gets every file; a second
run does nothing; two migrate processes started together apply each file
exactly once; an edited applied file is refused; a failing file leaves
nothing of itself behind; --status lists applied and pending files.

Each test migrates its own fresh database (created by the superuser, owned
by arbiter_owner) from a private copy of migrations/."""
import hashlib
import itertools
import os
import shutil
import subprocess
import tempfile
import unittest

import dbtest

SRC_MIGRATIONS = os.path.join(dbtest.HERE, "..", "..", "migrations")
_seq = itertools.count()


def conninfo(url, dbname):
    parts = [p for p in url.split() if not p.startswith("dbname=")]
    return " ".join(parts + ["dbname=" + dbname])


class Migrate(unittest.TestCase):
    def setUp(self):
        self.db = "mig_%d_%d" % (os.getpid(), next(_seq))
        dbtest.psql("CREATE DATABASE %s OWNER arbiter_owner" % self.db)
        self.owner = conninfo(dbtest.harness.owner_url(), self.db)
        self.su = conninfo(dbtest.harness.superuser_url(), self.db)
        self.dir = tempfile.mkdtemp(prefix="arbiter-mig-")
        for f in os.listdir(SRC_MIGRATIONS):
            if f.endswith(".sql"):
                shutil.copy(os.path.join(SRC_MIGRATIONS, f), self.dir)
        self.files = sorted(f for f in os.listdir(self.dir) if f.endswith(".sql"))
        self.assertTrue(self.files)

    def tearDown(self):
        shutil.rmtree(self.dir)
        dbtest.psql("DROP DATABASE IF EXISTS %s WITH (FORCE)" % self.db)

    def migrate(self, *extra, start_only=False):
        args = [dbtest.harness.ARBITERD, "migrate", "--migrate-database-url", self.owner,
                "--migrations-dir", self.dir, *extra]
        env = {k: v for k, v in os.environ.items() if not k.startswith("ARBITER_MIGRATE")}
        if start_only:
            return subprocess.Popen(args, env=env, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True)
        return subprocess.run(args, env=env, capture_output=True, text=True, timeout=60)

    def applied(self):
        return dbtest.psql("SELECT version, name, sha256 FROM arbiter_schema_migrations "
                           "ORDER BY version", self.su)

    def expected_rows(self):
        rows = []
        for f in self.files:
            with open(os.path.join(self.dir, f), "rb") as fh:
                sha = hashlib.sha256(fh.read()).hexdigest()
            rows.append([str(int(f[:4])), f[5:-4], sha])
        return rows

    def test_fresh_database_gets_every_file_then_nothing(self):
        r = self.migrate()
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.applied(), self.expected_rows())
        # the app role got its grants (and owns nothing)
        app = conninfo(dbtest.harness.database_url(), self.db)
        self.assertEqual(dbtest.psql("SELECT count(*) FROM tenants", app), [["0"]])
        first = dbtest.psql("SELECT applied_at FROM arbiter_schema_migrations", self.su)
        r = self.migrate()
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("0 migration(s) applied", r.stdout)
        self.assertEqual(dbtest.psql("SELECT applied_at FROM arbiter_schema_migrations",
                                     self.su), first)

    def test_two_concurrent_migrations_apply_each_file_once(self):
        procs = [self.migrate(start_only=True) for _ in range(2)]
        outs = [p.communicate(timeout=60) for p in procs]
        for p, (out, err) in zip(procs, outs):
            self.assertEqual(p.returncode, 0, err)
        self.assertEqual(self.applied(), self.expected_rows())
        lines = [ln for out, _ in outs for ln in out.splitlines() if ln.startswith("applied ")]
        self.assertEqual(len(lines), len(self.files), outs)
        # one applied everything; the other waited for it, then had nothing to do
        summaries = sorted(ln for out, _ in outs for ln in out.splitlines()
                           if "migration(s) applied" in ln)
        self.assertEqual(summaries, ["%d migration(s) applied, %d total" % (n, len(self.files))
                                     for n in (0, len(self.files))], outs)

    def test_pending_file_below_the_highest_applied_is_refused(self):
        self.assertEqual(self.migrate().returncode, 0)
        with open(os.path.join(self.dir, "0000_forgotten.sql"), "w") as fh:
            fh.write("CREATE TABLE forgotten (i int);\n")
        r = self.migrate()
        self.assertEqual(r.returncode, 1)
        self.assertIn("0000_forgotten.sql is pending but", r.stderr)
        self.assertEqual(dbtest.psql("SELECT to_regclass('forgotten') IS NULL", self.su),
                         [["t"]])

    def test_transaction_control_in_a_file_is_refused_before_anything_runs(self):
        with open(os.path.join(self.dir, "9993_commits.sql"), "w") as fh:
            fh.write("-- COMMIT in a comment is fine\n"
                     "CREATE TABLE half (i int);\n"
                     "DO $$ BEGIN PERFORM 1; END $$;  -- plpgsql's BEGIN is not a transaction\n"
                     "SELECT 'COMMIT; ROLLBACK;';\n"
                     "COMMIT;\n"
                     "CREATE TABLE other_half (i int);\n")
        r = self.migrate()
        self.assertEqual(r.returncode, 1)
        self.assertIn("9993_commits.sql:5 controls the transaction", r.stderr)
        self.assertEqual(dbtest.psql("SELECT to_regclass('half') IS NULL", self.su), [["t"]])
        self.assertEqual(self.applied(), [], "the check runs before any file")

    def test_edited_applied_file_is_refused(self):
        self.assertEqual(self.migrate().returncode, 0)
        with open(os.path.join(self.dir, self.files[0]), "a") as fh:
            fh.write("\n-- edited after it was applied\n")
        with open(os.path.join(self.dir, "9990_later.sql"), "w") as fh:
            fh.write("CREATE TABLE later_thing (i int);\n")
        r = self.migrate()
        self.assertEqual(r.returncode, 1)
        self.assertIn(self.files[0], r.stderr)
        self.assertIn("changed after it was applied", r.stderr)
        # and nothing later was applied
        self.assertEqual(dbtest.psql("SELECT to_regclass('later_thing') IS NULL", self.su),
                         [["t"]])

    def test_failing_file_leaves_nothing_behind(self):
        with open(os.path.join(self.dir, "9991_broken.sql"), "w") as fh:
            fh.write("CREATE TABLE broken_thing (i int);\n"
                     "INSERT INTO broken_thing VALUES (1);\n"
                     "SELECT 1 / 0;\n")
        r = self.migrate()
        self.assertEqual(r.returncode, 1)
        self.assertIn("9991_broken.sql", r.stderr)
        self.assertEqual(self.applied(), self.expected_rows())  # the good ones only
        self.assertEqual(dbtest.psql("SELECT to_regclass('broken_thing') IS NULL", self.su),
                         [["t"]])
        os.remove(os.path.join(self.dir, "9991_broken.sql"))
        self.assertEqual(self.migrate().returncode, 0)

    def test_status_lists_applied_and_pending(self):
        r = self.migrate("--status")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual([ln.split()[0] for ln in r.stdout.splitlines()],
                         ["pending"] * len(self.files))
        self.assertEqual(self.migrate().returncode, 0)
        with open(os.path.join(self.dir, "9992_next.sql"), "w") as fh:
            fh.write("SELECT 1;\n")
        r = self.migrate("--status")
        self.assertEqual(r.returncode, 0, r.stderr)
        states = [ln.split()[:2] for ln in r.stdout.splitlines()]
        self.assertEqual(states[-1], ["pending", "9992_next"])
        self.assertEqual([s[0] for s in states[:-1]], ["applied"] * len(self.files))

    def test_missing_url_is_a_configuration_error(self):
        env = {k: v for k, v in os.environ.items() if not k.startswith("ARBITER_MIGRATE")}
        r = subprocess.run([dbtest.harness.ARBITERD, "migrate"], env=env, capture_output=True,
                           text=True, timeout=30)
        self.assertEqual(r.returncode, 2)
        self.assertIn("migrate-database-url", r.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
