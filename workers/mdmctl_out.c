/*
 * Copyright (C) ngx_mdm contributors
 *
 * mdmctl: output.  Tables for people (aligned columns, times in UTC),
 * the API's JSON as it came for scripts (--json).
 */

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mdmctl.h"


struct mc_table_s {
    int      ncols;
    int      nrows;
    int      cap;
    char   **cells;           /* (nrows + 1) * ncols, the header first */
};


static char *
mc_cell_dup(const char *s)
{
    char  *d, *p;

    d = mc_strdup(s ? s : "-");
    /* one line per row, whatever a device called itself */
    for (p = d; *p; p++) {
        if (*p == '\n' || *p == '\r' || *p == '\t') {
            *p = ' ';
        }
    }
    return d;
}


mc_table_t *
mc_table(int ncols, ...)
{
    int          i;
    va_list      ap;
    mc_table_t  *t;

    t = calloc(1, sizeof(mc_table_t));
    if (t == NULL) {
        mc_err("out of memory");
        exit(MC_SERVER);
    }
    t->ncols = ncols;
    t->cap = 16;
    t->cells = calloc(t->cap * ncols, sizeof(char *));
    if (t->cells == NULL) {
        mc_err("out of memory");
        exit(MC_SERVER);
    }
    va_start(ap, ncols);
    for (i = 0; i < ncols; i++) {
        t->cells[i] = mc_cell_dup(va_arg(ap, const char *));
    }
    va_end(ap);
    return t;
}


void
mc_table_row(mc_table_t *t, ...)
{
    int       i;
    char    **nc;
    va_list   ap;

    if (t->nrows + 2 > t->cap) {
        t->cap *= 2;
        nc = realloc(t->cells, t->cap * t->ncols * sizeof(char *));
        if (nc == NULL) {
            mc_err("out of memory");
            exit(MC_SERVER);
        }
        t->cells = nc;
    }
    t->nrows++;
    va_start(ap, t);
    for (i = 0; i < t->ncols; i++) {
        t->cells[t->nrows * t->ncols + i] =
            mc_cell_dup(va_arg(ap, const char *));
    }
    va_end(ap);
}


/* prints and frees the table */
void
mc_table_print(mc_table_t *t)
{
    int      r, c;
    size_t  *w, n;

    w = calloc(t->ncols, sizeof(size_t));
    if (w == NULL) {
        mc_err("out of memory");
        exit(MC_SERVER);
    }
    for (r = 0; r <= t->nrows; r++) {
        for (c = 0; c < t->ncols; c++) {
            n = strlen(t->cells[r * t->ncols + c]);
            if (n > w[c]) {
                w[c] = n;
            }
        }
    }
    for (r = 0; r <= t->nrows; r++) {
        for (c = 0; c < t->ncols; c++) {
            if (c == t->ncols - 1) {
                printf("%s\n", t->cells[r * t->ncols + c]);
            } else {
                printf("%-*s  ", (int) w[c], t->cells[r * t->ncols + c]);
            }
            free(t->cells[r * t->ncols + c]);
        }
    }
    free(w);
    free(t->cells);
    free(t);
}


/* a value as text: strings as they are, numbers, true/false; "-" when
 * absent or null.  Numbers go to a small ring of buffers: valid until
 * eight more calls. */
const char *
mc_str(json_t *o, const char *key)
{
    json_t       *v;
    static int    next;
    static char   buf[8][48];
    char         *b;

    v = key ? json_object_get(o, key) : o;
    if (v == NULL || json_is_null(v)) {
        return "-";
    }
    if (json_is_string(v)) {
        return json_string_value(v);
    }
    if (json_is_true(v)) {
        return "yes";
    }
    if (json_is_false(v)) {
        return "no";
    }
    b = buf[next++ & 7];
    if (json_is_integer(v)) {
        snprintf(b, 48, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
    } else if (json_is_real(v)) {
        snprintf(b, 48, "%g", json_real_value(v));
    } else {
        snprintf(b, 48, "(%s)", json_is_array(v) ? "list" : "object");
    }
    return b;
}


static const char *
mc_time(json_t *o, const char *key, long div)
{
    json_t       *v;
    time_t        t;
    struct tm     tm;
    static int    next;
    static char   buf[8][32];
    char         *b;

    v = json_object_get(o, key);
    if (!json_is_number(v)) {
        return mc_str(o, key);
    }
    t = (time_t) (json_number_value(v) / div);
    b = buf[next++ & 7];
    if (gmtime_r(&t, &tm) == NULL) {
        return "-";
    }
    strftime(b, 32, "%Y-%m-%d %H:%M:%S", &tm);
    return b;
}


/* Unix milliseconds (the API's times) and seconds, as UTC */
const char *
mc_ms_time(json_t *o, const char *key)
{
    return mc_time(o, key, 1000);
}


const char *
mc_s_time(json_t *o, const char *key)
{
    return mc_time(o, key, 1);
}


void
mc_print_json(json_t *j)
{
    json_dumpf(j, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    fputc('\n', stdout);
}


/* one object as "key  value" lines, keys sorted; times (…_at, last_seen)
 * shown in UTC beside the number; nested values as compact JSON */
void
mc_print_object(json_t *o)
{
    size_t        i, n, w;
    char         *s;
    json_t       *v;
    const char   *k, **keys;
    mc_table_t   *t;

    n = json_object_size(o);
    keys = calloc(n + 1, sizeof(char *));
    if (keys == NULL) {
        mc_err("out of memory");
        exit(MC_SERVER);
    }
    i = 0;
    json_object_foreach(o, k, v) {
        keys[i++] = k;
    }
    /* sorted, so the fields are where the reader looks for them */
    for (i = 1; i < n; i++) {
        for (w = i; w > 0 && strcmp(keys[w - 1], keys[w]) > 0; w--) {
            k = keys[w];
            keys[w] = keys[w - 1];
            keys[w - 1] = k;
        }
    }

    t = mc_table(2, "FIELD", "VALUE");
    for (i = 0; i < n; i++) {
        v = json_object_get(o, keys[i]);
        w = strlen(keys[i]);
        if (json_is_object(v) || json_is_array(v)) {
            s = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS);
            mc_table_row(t, keys[i], s ? s : "-");
            free(s);
        } else if (json_is_integer(v)
                   && ((w > 3 && strcmp(keys[i] + w - 3, "_at") == 0)
                       || strcmp(keys[i], "last_seen") == 0))
        {
            char buf[80];
            snprintf(buf, sizeof(buf), "%s (%s UTC)", mc_str(v, NULL),
                     mc_ms_time(o, keys[i]));
            mc_table_row(t, keys[i], buf);
        } else {
            mc_table_row(t, keys[i], mc_str(v, NULL));
        }
    }
    free(keys);
    mc_table_print(t);
}


/* with --json: j printed as it is and freed, 1; else 0, j left alone */

int
mc_json_done(const mc_conf_t *conf, json_t *j)
{
    if (!conf->json) {
        return 0;
    }

    mc_print_json(j);
    json_decref(j);

    return 1;
}
