
/*
 * Copyright (C) ngx_mdm contributors
 *
 * The inventory (issue 12): the few fields of an Acknowledged
 * DeviceInformation (QueryResponses) or SecurityInfo report that
 * lua/connect.lua keeps in the device's enrollment hash.  Read here, with
 * libplist, so the script gets field/value pairs instead of a plist.
 *
 * Every value is at most NGX_HTTP_MDM_INV_MAX bytes: Redis keeps a hash as
 * a compact listpack only while each value is at most 64 bytes
 * (hash-max-listpack-value), and one longer value would make the whole
 * enrollment several times larger.  A longer one is left out.
 */


#include "ngx_http_mdm_inventory.h"
#include "ngx_http_mdm_request.h"


#define NGX_HTTP_MDM_INV_MAX  64


typedef struct {
    const char  *key;       /* Apple's */
    const char  *field;     /* the enrollment hash's */
} ngx_http_mdm_inv_field_t;


static ngx_http_mdm_inv_field_t  ngx_http_mdm_inv_device[] = {
    { "SerialNumber", "serial_number" },
    { "Model", "model" },
    { "ModelName", "model_name" },
    { "ProductName", "product_name" },
    { "OSVersion", "os_version" },
    { "BuildVersion", "build_version" },
    { "DeviceName", "device_name" },
    { "DeviceCapacity", "device_capacity" },
    { "AvailableDeviceCapacity", "available_device_capacity" },
    { "BatteryLevel", "battery_level" },
    { NULL, NULL }
};


static ngx_http_mdm_inv_field_t  ngx_http_mdm_inv_security[] = {
    { "FDE_Enabled", "filevault_enabled" },
    { "PasscodePresent", "passcode_present" },
    { "PasscodeCompliant", "passcode_compliant" },
    { NULL, NULL }
};


static ngx_int_t ngx_http_mdm_inv_fields(ngx_http_request_t *r,
    plist_t dict, ngx_http_mdm_inv_field_t *f, ngx_array_t *args);
static ngx_int_t ngx_http_mdm_inv_value(ngx_pool_t *pool, plist_t node,
    ngx_str_t *v);


/*
 * Appends the field/value pairs of an inventory report to args; nothing
 * for any other report.
 */

ngx_int_t
ngx_http_mdm_inventory_args(ngx_http_request_t *r, plist_t report,
    ngx_array_t *args)
{
    plist_t  d;

    d = plist_dict_get_item(report, "QueryResponses");
    if (d && plist_get_node_type(d) == PLIST_DICT) {
        return ngx_http_mdm_inv_fields(r, d, ngx_http_mdm_inv_device, args);
    }

    d = plist_dict_get_item(report, "SecurityInfo");
    if (d && plist_get_node_type(d) == PLIST_DICT) {
        return ngx_http_mdm_inv_fields(r, d, ngx_http_mdm_inv_security, args);
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_mdm_inv_fields(ngx_http_request_t *r, plist_t dict,
    ngx_http_mdm_inv_field_t *f, ngx_array_t *args)
{
    plist_t    node;
    ngx_str_t  v;

    for ( /* void */ ; f->key; f++) {
        node = plist_dict_get_item(dict, f->key);
        if (node == NULL) {
            continue;
        }

        if (ngx_http_mdm_inv_value(r->pool, node, &v) != NGX_OK) {
            ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                          "mdm: inventory: %s left out: not a string, number "
                          "or boolean of at most 64 bytes", f->key);
            continue;
        }

        if (ngx_http_mdm_push_arg(args, (u_char *) f->field,
                                  ngx_strlen(f->field)) != NGX_OK
            || ngx_http_mdm_push_arg(args, v.data, v.len) != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/* strings as they are, numbers in decimal (reals to 2 places), 1 or 0 */

static ngx_int_t
ngx_http_mdm_inv_value(ngx_pool_t *pool, plist_t node, ngx_str_t *v)
{
    char      *s;
    double     d;
    uint8_t    b;
    uint64_t   u;

    v->data = ngx_pnalloc(pool, NGX_HTTP_MDM_INV_MAX + 1);
    if (v->data == NULL) {
        return NGX_ERROR;
    }

    switch (plist_get_node_type(node)) {

    case PLIST_STRING:
        s = NULL;
        plist_get_string_val(node, &s);
        if (s == NULL || ngx_strlen(s) > NGX_HTTP_MDM_INV_MAX) {
            free(s);
            return NGX_DECLINED;
        }

        v->len = ngx_strlen(s);
        ngx_memcpy(v->data, s, v->len);
        free(s);
        return NGX_OK;

    case PLIST_REAL:
        plist_get_real_val(node, &d);
        if (d < -1e12 || d > 1e12) {
            return NGX_DECLINED;
        }

        /* ngx_sprintf has no sign for a fraction: only -1 is negative */
        v->len = ngx_sprintf(v->data, "%s%.2f", d < 0 ? "-" : "",
                             d < 0 ? -d : d) - v->data;
        return NGX_OK;

    case PLIST_UINT:
        plist_get_uint_val(node, &u);
        v->len = ngx_sprintf(v->data, "%uL", u) - v->data;
        return NGX_OK;

    case PLIST_BOOLEAN:
        plist_get_bool_val(node, &b);
        v->data[0] = b ? '1' : '0';
        v->len = 1;
        return NGX_OK;

    default:
        return NGX_DECLINED;
    }
}
