/*
 * Copyright (C) ngx_mdm contributors
 *
 * mdmctl: the command-line client of ngx_mdm's admin API.  Shared by the
 * mdmctl*.c files: the configuration, the option parser, HTTP to the API,
 * output (tables or JSON) and the exit codes scripts rely on.
 */

#ifndef MDMCTL_H
#define MDMCTL_H

#include <stddef.h>
#include <stdio.h>

#include <jansson.h>


/* exit codes (README "mdmctl: exit codes") */
#define MC_OK        0    /* everything done */
#define MC_PARTIAL   1    /* done for some IDs only (HTTP 207, or some of
                             several calls failed) */
#define MC_USAGE     2    /* bad command line, bad local input: nothing
                             was sent */
#define MC_SERVER    3    /* no answer, or 5xx, or an answer that is not
                             the API's (not JSON) */
#define MC_REFUSED   4    /* the server refused the request (4xx) */

#define MC_MAX_OPTS  32
#define MC_MAX_POS   10000


typedef struct {
    char        *server;          /* base URL, no trailing slash */
    char        *api_key;
    int          json;            /* --json: the API's JSON on stdout */
    long         timeout;         /* seconds, whole request */
    char        *mdmcert_url;     /* mdmcert.download's sign-request URL */
    char        *mdmcert_api_key;
    char        *pushcert_dir;    /* where pushcert keeps its files */
    char        *cacert;          /* CA file for the server's TLS */
    int          verbose;
} mc_conf_t;


/* one option a command takes: "name" (without --), whether it takes a
 * value, the help line */
typedef struct {
    const char  *name;
    const char  *arg;             /* NULL: a flag; else the value's name */
    const char  *help;
} mc_opt_t;

/* what the parser found: values by option (NULL if not given; "" for a
 * flag given), positional arguments, and for commands that take free
 * --key value pairs (send), those */
typedef struct {
    const char  *val[MC_MAX_OPTS];
    char       **pos;
    int          npos;
    const char **free_name;
    const char **free_val;
    int          nfree;
    mc_conf_t   *conf;            /* the settings, from mc_configure() */
} mc_args_t;

typedef struct mc_cmd_s  mc_cmd_t;

struct mc_cmd_s {
    const char     *name;         /* "devices", "pushcert request", ... */
    const char     *synopsis;     /* positional arguments */
    const char     *help;
    const mc_opt_t *opts;         /* terminated by a NULL name */
    int             free_opts;    /* accepts --KEY VALUE not in opts */
    int             needs_server;
    int           (*run)(const mc_cmd_t *cmd, mc_args_t *a);
};


/* mdmctl_conf.c */
#define MC_DEFAULT_MDMCERT_URL  "https://mdmcert.download/api/v1/signrequest"
int mc_configure(mc_conf_t *conf, const char **globals);
char *mc_config_dir(void);

/* mdmctl.c, mdmctl_util.c */
const char *mc_opt(const mc_cmd_t *cmd, mc_args_t *a, const char *name);
int mc_usage_error(const mc_cmd_t *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void mc_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int mc_parse_long(const char *s, long min, long max, long *out);
int mc_word(const char *s);
int mc_name_check(const mc_cmd_t *cmd, const char *name, const char *what);
char *mc_read_file(const char *path, size_t *len);
int mc_write_file(const char *path, const void *data, size_t len, int mode,
    int overwrite);
char *mc_strdup(const char *s);
char *mc_join_ids(char **ids, int n);
char *mc_b64(const void *p, size_t len);

/* mdmctl_http.c */
typedef struct {
    long         status;          /* 0: no answer */
    char        *body;
    size_t       len;
} mc_resp_t;

int mc_http(const mc_conf_t *conf, const char *method, const char *url, const char *auth,
    const char *const *headers, const char *body, size_t len,
    mc_resp_t *resp);
char *mc_url(const mc_conf_t *conf, const char *path_fmt, ...)
    __attribute__((format(printf, 2, 3)));
char *mc_escape(const char *s);
json_t *mc_api(const mc_conf_t *conf, const char *method, const char *path, const char *body,
    size_t len, int *rc);
int mc_status_rc(long status);
void mc_resp_free(mc_resp_t *r);

/* mdmctl_out.c */
typedef struct mc_table_s  mc_table_t;

mc_table_t *mc_table(int ncols, ...);
void mc_table_row(mc_table_t *t, ...);
void mc_table_print(mc_table_t *t);
const char *mc_str(json_t *o, const char *key);
const char *mc_ms_time(json_t *o, const char *key);
const char *mc_s_time(json_t *o, const char *key);
void mc_print_json(json_t *j);
int mc_json_done(const mc_conf_t *conf, json_t *j);
void mc_print_object(json_t *o);

/* mdmctl_inv.c */
void mc_print_status(json_t *j, const char *what);
int mc_want_pos(const mc_cmd_t *cmd, mc_args_t *a, int min, int max);
int mc_page_args(const mc_cmd_t *cmd, mc_args_t *a, long *limit, long *max);
json_t *mc_pages(const mc_conf_t *conf, const char *path,
    const char *list_key, const char *cursor_key, long limit, long max,
    int *rc);

/* mdmctl_vpp.c: vpp tokens|token-put|token-delete|config|assets|
 * assignments|sync|install|remove|install-status */
int mc_cmd_vpp_tokens(const mc_cmd_t *cmd, mc_args_t *a);
int mc_cmd_vpp_token_put(const mc_cmd_t *cmd, mc_args_t *a);
int mc_cmd_vpp_token_delete(const mc_cmd_t *cmd, mc_args_t *a);
int mc_cmd_vpp_config(const mc_cmd_t *cmd, mc_args_t *a);
int mc_cmd_vpp_assets(const mc_cmd_t *cmd, mc_args_t *a);
int mc_cmd_vpp_assignments(const mc_cmd_t *cmd, mc_args_t *a);
int mc_cmd_vpp_sync(const mc_cmd_t *cmd, mc_args_t *a);
int mc_cmd_vpp_install(const mc_cmd_t *cmd, mc_args_t *a);
int mc_cmd_vpp_install_status(const mc_cmd_t *cmd, mc_args_t *a);

/* the commands */
int mc_cmd_devices(const mc_cmd_t *cmd, mc_args_t *a);
int mc_cmd_device(const mc_cmd_t *cmd, mc_args_t *a);
int mc_cmd_queue(const mc_cmd_t *cmd, mc_args_t *a);
int mc_cmd_result(const mc_cmd_t *cmd, mc_args_t *a);
int mc_cmd_clear(const mc_cmd_t *cmd, mc_args_t *a);
int mc_cmd_push(const mc_cmd_t *cmd, mc_args_t *a);
int mc_cmd_certs(const mc_cmd_t *cmd, mc_args_t *a);
int mc_cmd_events(const mc_cmd_t *cmd, mc_args_t *a);
int mc_cmd_events_replay(const mc_cmd_t *cmd, mc_args_t *a);
int mc_cmd_version(const mc_cmd_t *cmd, mc_args_t *a);

int mc_cmd_send(const mc_cmd_t *cmd, mc_args_t *a);
int mc_cmd_templates(const mc_cmd_t *cmd, mc_args_t *a);

int mc_cmd_blueprint_put(const mc_cmd_t *cmd, mc_args_t *a);
int mc_cmd_blueprint_list(const mc_cmd_t *cmd, mc_args_t *a);
int mc_cmd_blueprint_show(const mc_cmd_t *cmd, mc_args_t *a);
int mc_cmd_blueprint_delete(const mc_cmd_t *cmd, mc_args_t *a);

int mc_cmd_pushcert_request(const mc_cmd_t *cmd, mc_args_t *a);
int mc_cmd_pushcert_vendor_sign(const mc_cmd_t *cmd, mc_args_t *a);
int mc_cmd_pushcert_mdmcert(const mc_cmd_t *cmd, mc_args_t *a);
int mc_cmd_pushcert_decrypt(const mc_cmd_t *cmd, mc_args_t *a);
int mc_cmd_pushcert_upload(const mc_cmd_t *cmd, mc_args_t *a);
int mc_cmd_pushcert_show(const mc_cmd_t *cmd, mc_args_t *a);

#endif /* MDMCTL_H */
