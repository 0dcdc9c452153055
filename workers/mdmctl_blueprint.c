/*
 * Copyright (C) ngx_mdm contributors
 *
 * mdmctl: blueprint put|list|show|delete over /v1/blueprints.  The file
 * of "put" is checked to be a JSON object here, so a typo is a usage
 * error (2) and not a round trip; what it holds is the server's to judge.
 */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "mdmctl.h"


static int
mc_blueprint_name(const mc_cmd_t *cmd, const char *name)
{
    return mc_name_check(cmd, name, "a blueprint name");
}


/* PUT, GET, DELETE of one blueprint: a line for people, or the JSON */
static int
mc_blueprint_call(const mc_conf_t *conf, const char *method,
    const char *name, const char *body, size_t len)
{
    int      rc;
    char    *esc, path[256];
    json_t  *j;

    esc = mc_escape(name);
    snprintf(path, sizeof(path), "/v1/blueprints/%s", esc);
    free(esc);
    j = mc_api(conf, method, path, body, len, &rc);
    if (j == NULL) {
        return rc;
    }
    if (conf->json || method[0] == 'G') {
        /* show: the blueprint as stored is JSON, whatever the output */
        mc_print_json(j);
    } else if (method[0] == 'P') {
        printf("%s blueprint %s: %s command(s), applies to %s, "
               "DeviceConfigured %s\n",
               json_is_true(json_object_get(j, "created")) ? "created"
                                                           : "replaced",
               mc_str(j, "name"), mc_str(j, "commands"),
               mc_str(j, "applies"), mc_str(j, "device_configured"));
    } else {
        printf("deleted blueprint %s\n", mc_str(j, "name"));
    }
    json_decref(j);
    return rc;
}


int
mc_cmd_blueprint_put(const mc_cmd_t *cmd, mc_args_t *a)
{
    int           rc;
    char         *body;
    size_t        len;
    json_t       *j;
    json_error_t  err;

    if ((rc = mc_want_pos(cmd, a, 2, 2)) != MC_OK
        || (rc = mc_blueprint_name(cmd, a->pos[0])) != MC_OK)
    {
        return rc;
    }
    body = mc_read_file(a->pos[1], &len);
    if (body == NULL) {
        mc_err("cannot read %s: %s", a->pos[1], strerror(errno));
        return MC_USAGE;
    }
    j = json_loadb(body, len, JSON_REJECT_DUPLICATES, &err);
    if (j == NULL || !json_is_object(j)) {
        mc_err("%s: not a JSON object%s%s (line %d)", a->pos[1],
               j ? "" : ": ", j ? "" : err.text, err.line);
        json_decref(j);
        free(body);
        return MC_USAGE;
    }
    json_decref(j);
    rc = mc_blueprint_call(a->conf, "PUT", a->pos[0], body, len);
    free(body);
    return rc;
}


int
mc_cmd_blueprint_list(const mc_cmd_t *cmd, mc_args_t *a)
{
    int          rc;
    size_t       i;
    json_t      *j, *e;
    mc_table_t  *t;

    if ((rc = mc_want_pos(cmd, a, 0, 0)) != MC_OK) {
        return rc;
    }
    j = mc_api(a->conf, "GET", "/v1/blueprints", NULL, 0, &rc);
    if (j == NULL) {
        return rc;
    }
    if (a->conf->json) {
        mc_print_json(j);
        json_decref(j);
        return rc;
    }
    t = mc_table(5, "NAME", "COMMANDS", "APPLIES TO", "DEVICE CONFIGURED",
                 "UPDATED (UTC)");
    json_array_foreach(json_object_get(j, "blueprints"), i, e) {
        mc_table_row(t, mc_str(e, "name"), mc_str(e, "commands"),
                     mc_str(e, "applies"), mc_str(e, "device_configured"),
                     mc_ms_time(e, "updated_at"));
    }
    mc_table_print(t);
    json_decref(j);
    return rc;
}


int
mc_cmd_blueprint_show(const mc_cmd_t *cmd, mc_args_t *a)
{
    int  rc;

    if ((rc = mc_want_pos(cmd, a, 1, 1)) != MC_OK
        || (rc = mc_blueprint_name(cmd, a->pos[0])) != MC_OK)
    {
        return rc;
    }
    return mc_blueprint_call(a->conf, "GET", a->pos[0], NULL, 0);
}


int
mc_cmd_blueprint_delete(const mc_cmd_t *cmd, mc_args_t *a)
{
    int  rc;

    if ((rc = mc_want_pos(cmd, a, 1, 1)) != MC_OK
        || (rc = mc_blueprint_name(cmd, a->pos[0])) != MC_OK)
    {
        return rc;
    }
    return mc_blueprint_call(a->conf, "DELETE", a->pos[0], NULL, 0);
}
