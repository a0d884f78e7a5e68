/* `arbiterd migrate [--status]`: a one-shot command, so blocking libpq is
 * fine here (it never runs on the server's loop). See migrate.h. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <libpq-fe.h>
#include <openssl/evp.h>

#include "config.h"
#include "db/migrate.h"

/* Key of the pg_advisory_lock that serialises concurrent migrators. */
#define MIGRATE_LOCK_KEY "7310582213477901313"

struct mig_file {
    int version;
    char *name;   /* owned: "tenants" of 0001_tenants.sql */
    char *path;   /* owned */
    char *sql;    /* owned: file contents */
    char sha[65]; /* hex SHA-256 of the contents */
};

struct mig_set {
    struct mig_file *v; /* owned */
    size_t n, cap;
};

static void set_free(struct mig_set *s)
{
    for (size_t i = 0; i < s->n; i++) {
        free(s->v[i].name);
        free(s->v[i].path);
        free(s->v[i].sql);
    }
    free(s->v);
}

/* NNNN_name.sql with name of [A-Za-z0-9_]; sets version and name length. */
static bool parse_name(const char *f, int *version, size_t *name_len)
{
    size_t len = strlen(f), i;

    if (len < 10 || strcmp(f + len - 4, ".sql") != 0 || f[4] != '_')
        return false;
    for (i = 0; i < 4; i++)
        if (!isdigit((unsigned char)f[i]))
            return false;
    for (i = 5; i < len - 4; i++)
        if (!isalnum((unsigned char)f[i]) && f[i] != '_')
            return false;
    *version = (int)strtol(f, NULL, 10); /* four checked digits */
    *name_len = len - 9;
    return true;
}

static int read_file(const char *path, char **out, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    long n;

    if (f == NULL)
        return -errno;
    if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0)
        goto fail;
    buf = malloc((size_t)n + 1);
    if (buf == NULL || fread(buf, 1, (size_t)n, f) != (size_t)n)
        goto fail;
    buf[n] = '\0';
    fclose(f);
    *out = buf;
    *len = (size_t)n;
    return 0;
fail:
    free(buf);
    fclose(f);
    return -EIO;
}

static int sha256_hex(const char *data, size_t len, char hex[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;

    if (EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32)
        return -EIO;
    for (unsigned i = 0; i < mdlen; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    return 0;
}

static int cmp_version(const void *a, const void *b)
{
    return ((const struct mig_file *)a)->version - ((const struct mig_file *)b)->version;
}

static int add_file(struct mig_set *s, const char *dir, const char *f, int version, size_t nlen)
{
    struct mig_file *m;
    size_t len = 0;

    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 16;
        struct mig_file *v = realloc(s->v, cap * sizeof(*v));

        if (v == NULL)
            return -ENOMEM;
        s->v = v;
        s->cap = cap;
    }
    m = &s->v[s->n];
    memset(m, 0, sizeof(*m));
    m->version = version;
    m->name = strndup(f + 5, nlen);
    len = strlen(dir) + strlen(f) + 2;
    m->path = malloc(len);
    if (m->name == NULL || m->path == NULL)
        goto fail;
    snprintf(m->path, len, "%s/%s", dir, f);
    if (read_file(m->path, &m->sql, &len) < 0 || sha256_hex(m->sql, len, m->sha) < 0) {
        fprintf(stderr, "arbiterd migrate: cannot read %s\n", m->path);
        goto fail;
    }
    s->n++;
    return 0;
fail:
    free(m->name);
    free(m->path);
    free(m->sql);
    return -EIO;
}

/* Loads every NNNN_name.sql of |dir|, sorted; duplicate versions fail. */
static int load_dir(const char *dir, struct mig_set *s)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int version, rv = 0;
    size_t nlen;

    if (d == NULL) {
        fprintf(stderr, "arbiterd migrate: cannot open migrations dir %s: %s\n", dir,
                strerror(errno));
        return -errno;
    }
    while (rv == 0 && (e = readdir(d)) != NULL) {
        if (parse_name(e->d_name, &version, &nlen))
            rv = add_file(s, dir, e->d_name, version, nlen);
    }
    closedir(d);
    if (rv < 0)
        return rv;
    qsort(s->v, s->n, sizeof(*s->v), cmp_version);
    for (size_t i = 1; i < s->n; i++) {
        if (s->v[i].version == s->v[i - 1].version) {
            fprintf(stderr, "arbiterd migrate: two files with version %04d in %s\n",
                    s->v[i].version, dir);
            return -EINVAL;
        }
    }
    return 0;
}

/* ---- transaction control in a file ----------------------------------------- */

/* Skips what cannot hold a statement boundary at |p|: a comment, a quoted
 * string or identifier, a dollar-quoted body (where plpgsql's BEGIN ... END
 * live). |prev| is the character before |p| (E'...' strings take
 * backslash escapes). Returns the position after it, or |p| when there is
 * none. Counts newlines into *|line|. */
static const char *skip_opaque(const char *p, char prev, int *line)
{
    const char *q;

    if (p[0] == '-' && p[1] == '-') {
        q = p + strcspn(p, "\n");
        return q;
    }
    if (p[0] == '/' && p[1] == '*') {
        int depth = 0;

        for (q = p; *q; q++) {
            if (q[0] == '/' && q[1] == '*')
                depth++, q++;
            else if (q[0] == '*' && q[1] == '/' && --depth == 0)
                return q + 2;
            else if (*q == '\n')
                (*line)++;
        }
        return q;
    }
    if (*p == '\'' || *p == '"') {
        bool backslash = *p == '\'' && (prev == 'E' || prev == 'e');

        for (q = p + 1; *q; q++) {
            if (*q == '\n')
                (*line)++;
            if (backslash && *q == '\\' && q[1] != '\0')
                q++;
            else if (*q == *p && q[1] == *p)
                q++;
            else if (*q == *p)
                return q + 1;
        }
        return q;
    }
    if (*p == '$') {
        size_t tag = 1 + strspn(p + 1, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_0123456789");

        if (p[tag] != '$' || (tag > 1 && isdigit((unsigned char)p[1])))
            return p; /* $1, a parameter, or a lone $ */
        for (q = p + tag + 1; *q; q++) {
            if (*q == '\n')
                (*line)++;
            if (strncmp(q, p, tag + 1) == 0)
                return q + tag + 1;
        }
        return q;
    }
    return p;
}

/* Whether the statement starting at |p| controls the transaction. */
static bool controls_transaction(const char *p)
{
    static const char *const words[] = {"BEGIN", "COMMIT", "ROLLBACK", "START", "END",
                                        "ABORT", "SAVEPOINT", "RELEASE", "PREPARE"};
    size_t n = strspn(p, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ");

    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
        if (n == strlen(words[i]) && strncasecmp(p, words[i], n) == 0)
            return true;
    return false;
}

/* The line of the first statement of |sql| that controls the transaction
 * (BEGIN, COMMIT, ROLLBACK, ...), or 0. A migration runs in one
 * transaction that arbiterd opens: a COMMIT inside would make it half
 * applied when a later statement fails. */
static int txn_control_line(const char *sql)
{
    const char *p = sql;
    int line = 1;
    bool start = true;

    while (*p) {
        const char *q = skip_opaque(p, p > sql ? p[-1] : '\0', &line);

        if (q != p) {
            p = q;
            continue;
        }
        if (*p == '\n')
            line++;
        if (*p == ';') {
            start = true;
        } else if (!isspace((unsigned char)*p)) {
            if (start && controls_transaction(p))
                return line;
            start = false;
        }
        p++;
    }
    return 0;
}

/* Runs |sql| (no parameters); prints the error and returns -1 on failure. */
static int exec_ok(PGconn *pg, const char *sql, const char *what)
{
    PGresult *r = PQexec(pg, sql);
    ExecStatusType st = PQresultStatus(r);
    int rv = (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) ? 0 : -1;

    if (rv < 0)
        fprintf(stderr, "arbiterd migrate: %s failed: %s", what, PQerrorMessage(pg));
    PQclear(r);
    return rv;
}

static PGconn *connect_owner(const struct cfg *cfg)
{
    static const char *const kw[] = {"dbname", "application_name", NULL};
    const char *vals[] = {cfg->migrate_database_url, "arbiterd-migrate", NULL};
    const char *role = cfg->app_role ? cfg->app_role : "arbiter_app";
    const char *pv[1] = {role};
    PGconn *pg = PQconnectdbParams(kw, vals, 1);
    PGresult *r;

    if (PQstatus(pg) != CONNECTION_OK) {
        fprintf(stderr, "arbiterd migrate: cannot connect: %s", PQerrorMessage(pg));
        PQfinish(pg);
        return NULL;
    }
    /* Migrations grant to the app role named by this session setting. */
    r = PQexecParams(pg, "SELECT set_config('arbiter.app_role', $1, false)", 1, NULL, pv, NULL,
                     NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        fprintf(stderr, "arbiterd migrate: %s", PQerrorMessage(pg));
        PQclear(r);
        PQfinish(pg);
        return NULL;
    }
    PQclear(r);
    if (exec_ok(pg, "SET client_min_messages = warning", "setup") < 0) {
        PQfinish(pg);
        return NULL;
    }
    return pg;
}

/* The applied migrations, (version, name, sha256, applied_at) ordered by
 * version, or NULL on error. An absent table reads as none applied. */
static PGresult *applied(PGconn *pg)
{
    PGresult *r = PQexec(pg, "SELECT to_regclass('arbiter_schema_migrations') IS NOT NULL");
    bool exists = PQresultStatus(r) == PGRES_TUPLES_OK && PQgetvalue(r, 0, 0)[0] == 't';

    PQclear(r);
    r = PQexec(pg, exists ? "SELECT version, name, sha256, applied_at FROM "
                            "arbiter_schema_migrations ORDER BY version"
                          : "SELECT 0, ''::text, ''::text, now() WHERE false");
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        fprintf(stderr, "arbiterd migrate: reading arbiter_schema_migrations failed: %s",
                PQerrorMessage(pg));
        PQclear(r);
        return NULL;
    }
    return r;
}

/* The version column of row |i| (an integer the table's type guarantees). */
static int row_version(const PGresult *r, int i)
{
    return (int)strtol(PQgetvalue(r, i, 0), NULL, 10);
}

static const struct mig_file *find_version(const struct mig_set *s, int version)
{
    for (size_t i = 0; i < s->n; i++)
        if (s->v[i].version == version)
            return &s->v[i];
    return NULL;
}

/* Every applied row must match a file with the same checksum. */
static int verify_applied(const struct mig_set *s, const PGresult *r, const char *dir)
{
    for (int i = 0; i < PQntuples(r); i++) {
        int v = row_version(r, i);
        const struct mig_file *m = find_version(s, v);

        if (m == NULL) {
            fprintf(stderr,
                    "arbiterd migrate: migration %04d_%s was applied but its file is "
                    "missing from %s\n",
                    v, PQgetvalue(r, i, 1), dir);
            return -1;
        }
        if (strcmp(m->sha, PQgetvalue(r, i, 2)) != 0) {
            fprintf(stderr,
                    "arbiterd migrate: %s was changed after it was applied "
                    "(sha256 applied %s, file %s); migrations are forward only: restore the "
                    "file and put the change in a new migration\n",
                    m->path, PQgetvalue(r, i, 2), m->sha);
            return -1;
        }
    }
    return 0;
}

static bool is_applied(const PGresult *r, int version)
{
    for (int i = 0; i < PQntuples(r); i++)
        if (row_version(r, i) == version)
            return true;
    return false;
}

static void print_status(const struct mig_set *s, const PGresult *r)
{
    for (int i = 0; i < PQntuples(r); i++)
        printf("applied  %04d_%s  %s\n", row_version(r, i), PQgetvalue(r, i, 1),
               PQgetvalue(r, i, 3));
    for (size_t i = 0; i < s->n; i++)
        if (!is_applied(r, s->v[i].version))
            printf("pending  %04d_%s\n", s->v[i].version, s->v[i].name);
}

/* Applies one file and its bookkeeping row in one transaction. */
static int apply_one(PGconn *pg, const struct mig_file *m)
{
    char version[16];
    const char *pv[3] = {version, m->name, m->sha};
    PGresult *r;

    snprintf(version, sizeof(version), "%d", m->version);
    if (exec_ok(pg, "BEGIN", "BEGIN") < 0)
        return -1;
    r = PQexec(pg, m->sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK) {
        fprintf(stderr, "arbiterd migrate: %s failed, nothing of it was applied: %s", m->path,
                PQerrorMessage(pg));
        PQclear(r);
        PQclear(PQexec(pg, "ROLLBACK"));
        return -1;
    }
    PQclear(r);
    r = PQexecParams(pg,
                     "INSERT INTO arbiter_schema_migrations (version, name, sha256) "
                     "VALUES ($1, $2, $3)",
                     3, NULL, pv, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_COMMAND_OK || exec_ok(pg, "COMMIT", "COMMIT") < 0) {
        fprintf(stderr, "arbiterd migrate: recording %s failed: %s", m->path, PQerrorMessage(pg));
        PQclear(r);
        PQclear(PQexec(pg, "ROLLBACK"));
        return -1;
    }
    PQclear(r);
    printf("applied  %04d_%s\n", m->version, m->name);
    return 0;
}

/* Refuses the set when a pending file is numbered below the highest
 * applied one (it would run after files that were written after it), or
 * controls the transaction. */
static int check_pending(const struct mig_set *s, const PGresult *r)
{
    int highest = PQntuples(r) > 0 ? row_version(r, PQntuples(r) - 1) : 0;

    for (size_t i = 0; i < s->n; i++) {
        int line;

        if (is_applied(r, s->v[i].version))
            continue;
        if (s->v[i].version < highest) {
            fprintf(stderr,
                    "arbiterd migrate: %s is pending but %04d is already applied; migrations "
                    "apply in order: give it a number above %04d\n",
                    s->v[i].path, highest, highest);
            return -1;
        }
        line = txn_control_line(s->v[i].sql);
        if (line > 0) {
            fprintf(stderr,
                    "arbiterd migrate: %s:%d controls the transaction (BEGIN, COMMIT, "
                    "ROLLBACK, ...); each file runs in one transaction of its own: remove it\n",
                    s->v[i].path, line);
            return -1;
        }
    }
    return 0;
}

static int apply_pending(PGconn *pg, const struct mig_set *s, const char *dir)
{
    PGresult *r;
    int rv = 0, n = 0;

    if (exec_ok(pg,
                "CREATE TABLE IF NOT EXISTS arbiter_schema_migrations ("
                "version integer PRIMARY KEY, name text NOT NULL, sha256 text NOT NULL, "
                "applied_at timestamptz NOT NULL DEFAULT now())",
                "creating arbiter_schema_migrations") < 0)
        return -1;
    r = applied(pg);
    if (r == NULL)
        return -1;
    if (verify_applied(s, r, dir) < 0 || check_pending(s, r) < 0)
        rv = -1;
    for (size_t i = 0; rv == 0 && i < s->n; i++) {
        if (is_applied(r, s->v[i].version))
            continue;
        rv = apply_one(pg, &s->v[i]);
        n++;
    }
    if (rv == 0)
        printf("%d migration(s) applied, %zu total\n", n, s->n);
    PQclear(r);
    return rv;
}

int migrate_main(const struct cfg *cfg)
{
    const char *dir = cfg->migrations_dir ? cfg->migrations_dir : ARBITER_MIGRATIONS_DIR;
    struct mig_set s = {0};
    PGconn *pg = NULL;
    PGresult *r;
    int code = 1;

    if (cfg->migrate_database_url == NULL) {
        fprintf(stderr, "arbiterd migrate: --migrate-database-url (or "
                        "ARBITER_MIGRATE_DATABASE_URL) is required: the owner role's conninfo\n");
        return 2;
    }
    if (load_dir(dir, &s) < 0)
        goto out;
    pg = connect_owner(cfg);
    if (pg == NULL)
        goto out;
    if (cfg->migrate_status) {
        r = applied(pg);
        if (r != NULL) {
            print_status(&s, r);
            code = verify_applied(&s, r, dir) < 0 ? 1 : 0;
            PQclear(r);
        }
        goto out;
    }
    /* Concurrent migrators queue here; the second finds nothing pending. */
    if (exec_ok(pg, "SELECT pg_advisory_lock(" MIGRATE_LOCK_KEY ")", "pg_advisory_lock") < 0)
        goto out;
    code = apply_pending(pg, &s, dir) < 0 ? 1 : 0;
    PQclear(PQexec(pg, "SELECT pg_advisory_unlock(" MIGRATE_LOCK_KEY ")"));
out:
    PQfinish(pg);
    set_free(&s);
    return code;
}
