/*
 * Copyright (C) ngx_mdm contributors
 *
 * mdmctl: vpp tokens|token-put|token-delete|config|assets|assignments|
 * sync|install|remove|install-status over /v1/vpp (Apps and Books, issue
 * 17).  Names and serials are checked here (usage error 2, nothing sent);
 * the rest is the server's to judge.  A token that expires within 15 days
 * is said on stderr too, so that a cron job's mail shows it.
 */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "mdmctl.h"


/* V1's names */
#define mc_vpp_name(cmd, name)                                                \
    mc_name_check(cmd, name, "a VPP location's name")


static int
mc_vpp_digits(const char *s)
{
    size_t  i;

    for (i = 0; s[i] >= '0' && s[i] <= '9'; i++) { /* void */ }
    return i > 0 && i <= 18 && s[i] == '\0';
}


/* one call whose answer is shown as it is (--json) or as key: value */
static int
mc_vpp_show(const mc_conf_t *conf, const char *method, const char *path,
    const char *body, size_t len)
{
    int      rc;
    json_t  *j;

    j = mc_api(conf, method, path, body, len, &rc);
    if (j == NULL) {
        return rc;
    }
    if (!mc_json_done(conf, j)) {
        if (rc == MC_OK || rc == MC_PARTIAL) {
            mc_print_object(j);
        }
        json_decref(j);
    }
    return rc;
}


static void
mc_vpp_row(mc_table_t *t, json_t *e)
{
    const char  *w;

    w = mc_str(e, "warning");
    mc_table_row(t, mc_str(e, "name"), mc_str(e, "org"),
                 mc_str(e, "location"), mc_s_time(e, "token_expiry"),
                 mc_str(e, "expires_in_days"),
                 json_is_true(json_object_get(e, "stopped"))
                     ? mc_str(e, "stop_reason") : "no",
                 mc_str(e, "last_result"));
    if (json_is_string(json_object_get(e, "warning"))) {
        mc_err("VPP location %s: %s", mc_str(e, "name"), w);
    }
}


int
mc_cmd_vpp_tokens(const mc_cmd_t *cmd, mc_args_t *a)
{
    int          rc;
    char         path[128];
    size_t       i;
    json_t      *j, *e;
    mc_table_t  *t;

    if ((rc = mc_want_pos(cmd, a, 0, 1)) != MC_OK
        || (a->npos && (rc = mc_vpp_name(cmd, a->pos[0])) != MC_OK))
    {
        return rc;
    }
    snprintf(path, sizeof(path), "/v1/vpp/tokens%s%s", a->npos ? "/" : "",
             a->npos ? a->pos[0] : "");
    j = mc_api(a->conf, "GET", path, NULL, 0, &rc);
    if (j == NULL || mc_json_done(a->conf, j)) {
        return rc;
    }
    if (rc != MC_OK) {
        json_decref(j);
        return rc;
    }
    t = mc_table(7, "NAME", "ORG", "LOCATION", "TOKEN EXPIRES (UTC)", "DAYS",
                 "STOPPED", "LAST SYNC");
    if (a->npos) {
        mc_vpp_row(t, j);
    } else {
        json_array_foreach(json_object_get(j, "locations"), i, e) {
            mc_vpp_row(t, e);
        }
    }
    mc_table_print(t);
    json_decref(j);
    return rc;
}


int
mc_cmd_vpp_token_put(const mc_cmd_t *cmd, mc_args_t *a)
{
    int      rc;
    char    *body, path[128];
    size_t   len;

    if ((rc = mc_want_pos(cmd, a, 2, 2)) != MC_OK
        || (rc = mc_vpp_name(cmd, a->pos[0])) != MC_OK)
    {
        return rc;
    }
    body = mc_read_file(a->pos[1], &len);
    if (body == NULL) {
        mc_err("cannot read %s: %s", a->pos[1], strerror(errno));
        return MC_USAGE;
    }
    snprintf(path, sizeof(path), "/v1/vpp/tokens/%s%s", a->pos[0],
             mc_opt(cmd, a, "force") ? "?force=1" : "");
    rc = mc_vpp_show(a->conf, "PUT", path, body, len);
    free(body);
    return rc;
}


/* "COMMAND NAME": METHOD /v1/vpp/SUB/NAME without a body, answer shown */
static int
mc_vpp_plain(const mc_cmd_t *cmd, mc_args_t *a, const char *method,
    const char *sub)
{
    int   rc;
    char  path[128];

    if ((rc = mc_want_pos(cmd, a, 1, 1)) != MC_OK
        || (rc = mc_vpp_name(cmd, a->pos[0])) != MC_OK)
    {
        return rc;
    }
    snprintf(path, sizeof(path), "/v1/vpp/%s/%s", sub, a->pos[0]);
    return mc_vpp_show(a->conf, method, path, NULL, 0);
}


int
mc_cmd_vpp_token_delete(const mc_cmd_t *cmd, mc_args_t *a)
{
    return mc_vpp_plain(cmd, a, "DELETE", "tokens");
}


/* without options a GET; with, a PUT of the current config changed */
int
mc_cmd_vpp_config(const mc_cmd_t *cmd, mc_args_t *a)
{
    int          rc;
    char        *body, path[128];
    json_t      *cur, *put;
    const char  *base, *notify;

    if ((rc = mc_want_pos(cmd, a, 1, 1)) != MC_OK
        || (rc = mc_vpp_name(cmd, a->pos[0])) != MC_OK)
    {
        return rc;
    }
    snprintf(path, sizeof(path), "/v1/vpp/config/%s", a->pos[0]);
    base = mc_opt(cmd, a, "base-url");
    notify = mc_opt(cmd, a, "notify-url");
    if (base == NULL && notify == NULL) {
        return mc_vpp_show(a->conf, "GET", path, NULL, 0);
    }

    /* the other URL as it is: a location not yet known has none */
    cur = mc_api(a->conf, "GET", path, NULL, 0, &rc);
    if (cur == NULL || (rc != MC_OK && rc != MC_REFUSED)) {
        json_decref(cur);
        return rc;
    }
    put = json_object();
    if (rc == MC_OK && !json_is_true(json_object_get(cur, "default"))) {
        json_object_set(put, "base_url", json_object_get(cur, "base_url"));
    }
    if (rc == MC_OK && json_object_get(cur, "notify_url")) {
        json_object_set(put, "notify_url",
                        json_object_get(cur, "notify_url"));
    }
    json_decref(cur);
    if (base) {
        json_object_set_new(put, "base_url", json_string(base));
    }
    if (notify) {
        json_object_set_new(put, "notify_url", json_string(notify));
    }
    body = json_dumps(put, JSON_COMPACT);
    json_decref(put);
    if (body == NULL) {
        mc_err("out of memory");
        return MC_SERVER;
    }
    rc = mc_vpp_show(a->conf, "PUT", path, body, strlen(body));
    free(body);
    return rc;
}


int
mc_cmd_vpp_assets(const mc_cmd_t *cmd, mc_args_t *a)
{
    int          rc;
    long         limit, max;
    char         path[128];
    size_t       i;
    json_t      *all, *e;
    mc_table_t  *t;

    if ((rc = mc_want_pos(cmd, a, 1, 1)) != MC_OK
        || (rc = mc_vpp_name(cmd, a->pos[0])) != MC_OK
        || (rc = mc_page_args(cmd, a, &limit, &max)) != MC_OK)
    {
        return rc;
    }
    snprintf(path, sizeof(path), "/v1/vpp/assets/%s", a->pos[0]);
    all = mc_pages(a->conf, path, "assets", "next_cursor", limit, max, &rc);
    if (all == NULL || mc_json_done(a->conf, all)) {
        return rc;
    }
    t = mc_table(7, "ADAM ID", "KIND", "PRICING", "ASSIGNED", "AVAILABLE",
                 "TOTAL", "DEVICE ASSIGNABLE");
    json_array_foreach(json_object_get(all, "assets"), i, e) {
        mc_table_row(t, mc_str(e, "adamId"), mc_str(e, "productType"),
                     mc_str(e, "pricingParam"), mc_str(e, "assignedCount"),
                     mc_str(e, "availableCount"), mc_str(e, "totalCount"),
                     mc_str(e, "deviceAssignable"));
    }
    mc_table_print(t);
    json_decref(all);
    return MC_OK;
}


int
mc_cmd_vpp_assignments(const mc_cmd_t *cmd, mc_args_t *a)
{
    int          rc;
    char         path[256];
    size_t       i;
    json_t      *all, *e;
    const char  *serial, *adam;

    if ((rc = mc_want_pos(cmd, a, 1, 1)) != MC_OK
        || (rc = mc_vpp_name(cmd, a->pos[0])) != MC_OK)
    {
        return rc;
    }
    serial = mc_opt(cmd, a, "serial");
    adam = mc_opt(cmd, a, "adam-id");
    if ((serial == NULL) == (adam == NULL)
        || (serial && !mc_word(serial)) || (adam && !mc_vpp_digits(adam)))
    {
        return mc_usage_error(cmd, "give --serial SERIAL or --adam-id "
                              "DIGITS, one of them");
    }
    if (serial) {
        snprintf(path, sizeof(path), "/v1/vpp/assignments/%s?serial=%s",
                 a->pos[0], serial);
        all = mc_api(a->conf, "GET", path, NULL, 0, &rc);
    } else {
        snprintf(path, sizeof(path), "/v1/vpp/assignments/%s?adamId=%s",
                 a->pos[0], adam);
        all = mc_pages(a->conf, path, "serials", "next_cursor", 1000, 0, &rc);
    }
    if (all == NULL || mc_json_done(a->conf, all)) {
        return rc;
    }
    json_array_foreach(json_object_get(all, serial ? "adam_ids" : "serials"),
                       i, e)
    {
        printf("%s\n", json_string_value(e));
    }
    json_decref(all);
    return rc;
}


int
mc_cmd_vpp_sync(const mc_cmd_t *cmd, mc_args_t *a)
{
    return mc_vpp_plain(cmd, a, "POST", "sync");
}


/* install NAME ADAM SERIAL... and remove NAME ADAM BUNDLE SERIAL... */
int
mc_cmd_vpp_install(const mc_cmd_t *cmd, mc_args_t *a)
{
    int          rc, i, first, remove;
    long         flags;
    char        *body, path[128];
    json_t      *j, *devs, *opts, *ans;
    const char  *v, *pricing;

    remove = (strcmp(cmd->name, "vpp remove") == 0);
    first = remove ? 3 : 2;
    if ((rc = mc_want_pos(cmd, a, first + 1, MC_MAX_POS)) != MC_OK
        || (rc = mc_vpp_name(cmd, a->pos[0])) != MC_OK)
    {
        return rc;
    }
    if (!mc_vpp_digits(a->pos[1])) {
        return mc_usage_error(cmd, "ADAM_ID is the app's Adam ID (digits)");
    }
    pricing = mc_opt(cmd, a, "pricing");
    if (pricing && strcmp(pricing, "STDQ") != 0
        && strcmp(pricing, "PLUS") != 0)
    {
        return mc_usage_error(cmd, "--pricing is STDQ or PLUS");
    }
    devs = json_array();
    for (i = first; i < a->npos; i++) {
        if (!mc_opt(cmd, a, "by-id") && !mc_word(a->pos[i])) {
            json_decref(devs);
            return mc_usage_error(cmd, "\"%s\" is not a serial number "
                                  "(--by-id for enrollment ids)", a->pos[i]);
        }
        json_array_append_new(devs, json_string(a->pos[i]));
    }
    j = json_pack("{s:s, s:o}", "adam_id", a->pos[1],
                  mc_opt(cmd, a, "by-id") ? "enrollment_ids" : "serials",
                  devs);
    if (remove) {
        json_object_set_new(j, "identifier", json_string(a->pos[2]));
        if (pricing) {
            json_object_set_new(j, "pricing_param", json_string(pricing));
        }
    } else {
        opts = json_object();
        v = mc_opt(cmd, a, "management-flags");
        if (v && mc_parse_long(v, 0, 1000, &flags) != 0) {
            json_decref(j);
            json_decref(opts);
            return mc_usage_error(cmd, "--management-flags is a number");
        }
        if (v) {
            json_object_set_new(opts, "management_flags",
                                json_integer(flags));
        }
        if (pricing) {
            json_object_set_new(opts, "pricing_param", json_string(pricing));
        }
        json_object_set_new(j, "options", opts);
    }
    body = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    snprintf(path, sizeof(path), "/v1/vpp/%s/%s",
             remove ? "remove" : "install", a->pos[0]);
    ans = mc_api(a->conf, "POST", path, body, strlen(body), &rc);
    free(body);
    if (ans == NULL || mc_json_done(a->conf, ans)) {
        return rc;
    }
    if (rc == MC_OK) {
        printf("%s %s: %s devices (%s enrolled, %s not), command %s\n"
               "follow it: mdmctl vpp install-status %s %s\n",
               remove ? "removal" : "install", mc_str(ans, "install_id"),
               mc_str(ans, "total"), mc_str(ans, "enrolled"),
               mc_str(ans, "not_enrolled"), mc_str(ans, "command_uuid"),
               a->pos[0], mc_str(ans, "install_id"));
    }
    json_decref(ans);
    return rc;
}


int
mc_cmd_vpp_install_status(const mc_cmd_t *cmd, mc_args_t *a)
{
    int          rc;
    long         limit, max;
    char         path[256];
    size_t       i;
    json_t      *all, *e;
    const char  *state;
    mc_table_t  *t;

    if ((rc = mc_want_pos(cmd, a, 2, 2)) != MC_OK
        || (rc = mc_vpp_name(cmd, a->pos[0])) != MC_OK
        || (rc = mc_page_args(cmd, a, &limit, &max)) != MC_OK)
    {
        return rc;
    }
    state = mc_opt(cmd, a, "state");
    if (!mc_word(a->pos[1]) || (state && !mc_word(state))) {
        return mc_usage_error(cmd, "INSTALL_ID is what install answered; "
                              "--state a word");
    }
    snprintf(path, sizeof(path), "/v1/vpp/install/%s/%s%s%s", a->pos[0],
             a->pos[1], state ? "?state=" : "", state ? state : "");
    all = mc_pages(a->conf, path, "devices", "next_cursor", limit, max, &rc);
    if (all == NULL || mc_json_done(a->conf, all)) {
        return rc;
    }
    printf("%s %s of app %s: %s; %s devices, %s associated, %s queued, "
           "%s failed%s%s\n\n", mc_str(all, "action"),
           mc_str(all, "install_id"), mc_str(all, "adam_id"),
           mc_str(all, "state"), mc_str(all, "total"),
           mc_str(all, "associated"), mc_str(all, "queued"),
           mc_str(all, "failed"),
           json_is_string(json_object_get(all, "error"))
           && json_string_length(json_object_get(all, "error")) ? ": " : "",
           json_is_string(json_object_get(all, "error"))
           && json_string_length(json_object_get(all, "error"))
           ? mc_str(all, "error") : "");
    t = mc_table(5, "SERIAL", "ENROLLMENT", "STATE", "COMMAND", "ERROR");
    json_array_foreach(json_object_get(all, "devices"), i, e) {
        mc_table_row(t, mc_str(e, "serial"), mc_str(e, "enrollment_id"),
                     mc_str(e, "state"), mc_str(e, "command_status"),
                     mc_str(e, "error"));
    }
    mc_table_print(t);
    json_decref(all);
    return MC_OK;
}
