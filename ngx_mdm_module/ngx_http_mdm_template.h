
/*
 * Copyright (C) ngx_mdm contributors
 *
 * Typed command templates: one table (ngx_http_mdm_template_table.c) that
 * both builds the command plists (POST /v1/commands, blueprints) and
 * describes them (GET /v1/templates, contract T1).
 */


#ifndef _NGX_HTTP_MDM_TEMPLATE_H_INCLUDED_
#define _NGX_HTTP_MDM_TEMPLATE_H_INCLUDED_


#include "ngx_http_mdm_module.h"

#include <jansson.h>


/* the types of contract T1 */
#define NGX_HTTP_MDM_T_STRING    0
#define NGX_HTTP_MDM_T_INTEGER   1
#define NGX_HTTP_MDM_T_BOOLEAN   2
#define NGX_HTTP_MDM_T_REAL      3
#define NGX_HTTP_MDM_T_DATA      4
#define NGX_HTTP_MDM_T_DATE      5
#define NGX_HTTP_MDM_T_ARRAY     6
#define NGX_HTTP_MDM_T_DICT      7

/* the server fills Command.UnlockToken from the enrollment when not given */
#define NGX_HTTP_MDM_TPL_UNLOCK  0x01


/*
 * plist is where the value goes in Command:
 *   "Key"                   Command.Key
 *   "Dict.Key"              Command.Dict.Key (the dictionary made on need)
 *   "Array[Item].Key"       one more element {Item = "Item", Key = value}
 *                           of Command.Array (Settings' items)
 *   "Array[].Key"           Key of the one element this template adds to
 *                           Command.Array (ScheduleOSUpdate's update)
 * A key of type array whose plist is an "Array" of the above takes whole
 * elements, which come before those built from the other keys.
 */
typedef struct {
    const char   *name;       /* snake_case of Apple's key (contract T1) */
    const char   *plist;
    ngx_uint_t    type;
    ngx_uint_t    items;      /* the elements' type of an array */
    ngx_uint_t    required;
    const char   *def;        /* the default as JSON text, or NULL */
    const char   *values;     /* the allowed values as a JSON array, or NULL */
    const char   *needs;      /* another key this one is useless without */
    const char   *doc;
} ngx_http_mdm_template_key_t;


typedef struct {
    const char                   *request_type;
    const char                   *one_of;    /* exactly one of these names */
    const char                   *any_of;    /* at least one of them */
    const char                   *nonempty;  /* a Command array that must
                                                have an element */
    ngx_uint_t                    flags;
    const char                   *doc;
    ngx_http_mdm_template_key_t  *keys;
} ngx_http_mdm_template_t;


extern ngx_http_mdm_template_t  ngx_http_mdm_templates[];


/* GET /v1/templates: {"templates": [...]}, a new reference */
json_t *ngx_http_mdm_template_describe(void);

/*
 * The command {Command = {RequestType, ...}} that the JSON object in asks
 * for, freed with the pool, or NULL and *err: why it is refused, or
 * "!..." for an internal failure.  "request_type" and "command_uuid" are
 * read by the caller; any other key must be the template's.
 */
plist_t ngx_http_mdm_template_build(ngx_pool_t *pool, json_t *in,
    ngx_http_mdm_template_t **tpl, const char **err);

/* the template of a request type, or NULL */
ngx_http_mdm_template_t *ngx_http_mdm_template_find(const char *rtype);

/* frees p with the pool: NGX_OK or NGX_ERROR (p freed then) */
ngx_int_t ngx_http_mdm_template_own(ngx_pool_t *pool, plist_t p);


#endif /* _NGX_HTTP_MDM_TEMPLATE_H_INCLUDED_ */
