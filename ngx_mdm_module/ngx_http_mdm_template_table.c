
/*
 * Copyright (C) ngx_mdm contributors
 *
 * The command templates: Apple's request types with their keys, as Apple's
 * schemas (apple-device-management/mdm/commands/NAME.yaml) define them.  The
 * names are the snake_case of Apple's keys (contract T1); t/templates.t
 * checks every plist built from here against those schemas.
 */


#include "ngx_http_mdm_template.h"


#define T(t)  NGX_HTTP_MDM_T_##t

/* name, plist key, type, elements' type, required, default, doc */
#define KEY(n, p, t, it, req, def, doc)                                      \
    { n, p, T(t), T(it), req, def, NULL, NULL, doc }
#define ENUM(n, p, t, vals, def, doc)                                        \
    { n, p, T(t), 0, 0, def, vals, NULL, doc }
#define NEEDS(n, p, t, need, doc)                                            \
    { n, p, T(t), 0, 0, NULL, NULL, need, doc }
#define OPT(n, p, t, doc)      KEY(n, p, t, STRING, 0, NULL, doc)
#define REQ(n, p, t, doc)      KEY(n, p, t, STRING, 1, NULL, doc)
#define LIST(n, p, it, doc)    KEY(n, p, ARRAY, it, 0, NULL, doc)
#define END                    { NULL, NULL, 0, 0, 0, NULL, NULL, NULL, NULL }


/* what DeviceInformation asks without "queries": the inventory's fields */
#define NGX_HTTP_MDM_DEFAULT_QUERIES                                         \
    "[\"DeviceName\",\"OSVersion\",\"BuildVersion\",\"ModelName\","          \
    "\"Model\",\"ProductName\",\"SerialNumber\",\"DeviceCapacity\","        \
    "\"AvailableDeviceCapacity\",\"BatteryLevel\",\"UDID\","                \
    "\"IsSupervised\",\"IsActivationLockEnabled\",\"WiFiMAC\","             \
    "\"IsMDMLostModeEnabled\"]"


static ngx_http_mdm_template_key_t  ngx_http_mdm_tk_none[] = { END };

static ngx_http_mdm_template_key_t  ngx_http_mdm_tk_device_information[] = {
    KEY("queries", "Queries", ARRAY, STRING, 0, NGX_HTTP_MDM_DEFAULT_QUERIES,
        "the query names to ask (Apple's DeviceInformation queries); the "
        "default asks what the inventory keeps"),
    OPT("device_attestation_nonce", "DeviceAttestationNonce", DATA,
        "a nonce for DevicePropertiesAttestation (base64, up to 32 bytes)"),
    END
};

static ngx_http_mdm_template_key_t  ngx_http_mdm_tk_managed_only[] = {
    KEY("managed_only", "ManagedOnly", BOOLEAN, STRING, 0, NULL,
        "only the items this MDM server installed"),
    END
};

static ngx_http_mdm_template_key_t  ngx_http_mdm_tk_installed_apps[] = {
    LIST("identifiers", "Identifiers", STRING,
         "only the apps with these bundle identifiers"),
    OPT("managed_apps_only", "ManagedAppsOnly", BOOLEAN,
        "only the apps this MDM server manages"),
    LIST("items", "Items", STRING,
         "the attributes to return (Name, Identifier, ShortVersion, ...)"),
    END
};

static ngx_http_mdm_template_key_t  ngx_http_mdm_tk_managed_apps[] = {
    LIST("identifiers", "Identifiers", STRING,
         "only the apps with these bundle identifiers"),
    END
};

static ngx_http_mdm_template_key_t  ngx_http_mdm_tk_restart[] = {
    OPT("rebuild_kernel_cache", "RebuildKernelCache", BOOLEAN,
        "macOS: rebuild the kernel cache on restart"),
    LIST("kext_paths", "KextPaths", STRING,
         "macOS: kernel extensions to add to the kernel cache"),
    OPT("notify_user", "NotifyUser", BOOLEAN,
        "macOS: let the user save their work first"),
    END
};

static ngx_http_mdm_template_key_t  ngx_http_mdm_tk_device_lock[] = {
    OPT("pin", "PIN", STRING, "macOS: the six-character Find My PIN"),
    OPT("message", "Message", STRING, "shown on the Lock screen"),
    OPT("phone_number", "PhoneNumber", STRING,
        "shown on the Lock screen"),
    END
};

static ngx_http_mdm_template_key_t  ngx_http_mdm_tk_erase[] = {
    OPT("pin", "PIN", STRING, "macOS: the six-character Find My PIN"),
    OPT("preserve_data_plan", "PreserveDataPlan", BOOLEAN,
        "iOS: keep the eSIM data plan"),
    ENUM("obliteration_behavior", "ObliterationBehavior", STRING,
         "[\"Default\",\"DoNotObliterate\",\"ObliterateWithWarning\","
         "\"Always\"]", NULL,
         "macOS: what to do when Erase All Content and Settings fails"),
    OPT("disallow_proximity_setup", "DisallowProximitySetup", BOOLEAN,
        "iOS: no Quick Start after the erase"),
    OPT("return_to_service", "ReturnToService.Enabled", BOOLEAN,
        "iOS 17+: return to the Home Screen after the erase"),
    NEEDS("wifi_profile_data", "ReturnToService.WiFiProfileData", DATA,
          "return_to_service", "the Wi-Fi profile Return to Service uses "
          "(base64)"),
    NEEDS("mdm_profile_data", "ReturnToService.MDMProfileData", DATA,
          "return_to_service", "the enrollment profile Return to Service "
          "uses (base64)"),
    END
};

static ngx_http_mdm_template_key_t  ngx_http_mdm_tk_clear_passcode[] = {
    OPT("unlock_token", "UnlockToken", DATA,
        "base64; without it, the UnlockToken the device sent in its "
        "TokenUpdate (then one enrollment id only)"),
    END
};

static ngx_http_mdm_template_key_t  ngx_http_mdm_tk_install_profile[] = {
    REQ("payload", "Payload", DATA,
        "the profile, signed or not, base64 (mdmctl: a file)"),
    END
};

static ngx_http_mdm_template_key_t  ngx_http_mdm_tk_identifier[] = {
    REQ("identifier", "Identifier", STRING,
        "the profile's PayloadIdentifier or the app's bundle identifier"),
    END
};

static ngx_http_mdm_template_key_t  ngx_http_mdm_tk_install_app[] = {
    OPT("itunes_store_id", "iTunesStoreID", INTEGER,
        "the App Store id of the app"),
    OPT("identifier", "Identifier", STRING,
        "the bundle identifier of an App Store app"),
    OPT("manifest_url", "ManifestURL", STRING,
        "https URL of an in-house app's manifest"),
    ENUM("management_flags", "ManagementFlags", INTEGER, "[1,4,5]", NULL,
         "1: remove with the MDM profile, 4: no app data backup, 5: both"),
    ENUM("purchase_method", "Options.PurchaseMethod", INTEGER, "[0,1]", NULL,
         "0: legacy VPP, 1: volume-purchased (Apps and Books)"),
    OPT("configuration", "Configuration", DICT,
        "the managed app configuration dictionary"),
    OPT("attributes", "Attributes", DICT,
        "the app's attributes (VPNUUID, Removable, ...)"),
    ENUM("change_management_state", "ChangeManagementState", STRING,
         "[\"Managed\"]", NULL, "take over an app the user installed"),
    OPT("install_as_managed", "InstallAsManaged", BOOLEAN,
        "macOS: install as a managed app"),
    OPT("ios_app", "iOSApp", BOOLEAN, "macOS: an iPhone/iPad app"),
    END
};

static ngx_http_mdm_template_key_t  ngx_http_mdm_tk_install_enterprise[] = {
    OPT("manifest", "Manifest", DICT,
        "the manifest itself (items: assets, metadata)"),
    OPT("manifest_url", "ManifestURL", STRING,
        "https URL of the manifest (a bootstrap package's)"),
    LIST("manifest_url_pinning_certs", "ManifestURLPinningCerts", DATA,
         "DER certificates (base64) to pin the manifest URL's TLS to"),
    OPT("pinning_revocation_check_required",
        "PinningRevocationCheckRequired", BOOLEAN,
        "refuse pinned certificates whose revocation cannot be checked"),
    OPT("install_as_managed", "InstallAsManaged", BOOLEAN,
        "macOS: install as a managed app"),
    ENUM("management_flags", "ManagementFlags", INTEGER, "[1]", NULL,
         "1: remove with the MDM profile"),
    OPT("configuration", "Configuration", DICT,
        "the managed app configuration dictionary"),
    ENUM("change_management_state", "ChangeManagementState", STRING,
         "[\"Managed\"]", NULL, "take over an app the user installed"),
    OPT("ios_app", "iOSApp", BOOLEAN, "macOS: an iPhone/iPad app"),
    END
};

static ngx_http_mdm_template_key_t  ngx_http_mdm_tk_schedule_update[] = {
    LIST("updates", "Updates", DICT,
         "whole update dictionaries with Apple's keys (ProductKey, "
         "InstallAction, ...), before the one the other keys make"),
    ENUM("install_action", "Updates[].InstallAction", STRING,
         "[\"Default\",\"DownloadOnly\",\"InstallASAP\",\"NotifyOnly\","
         "\"InstallLater\",\"InstallForceRestart\"]", "\"Default\"",
         "what to do with the update"),
    OPT("product_key", "Updates[].ProductKey", STRING,
        "the update's product key (from AvailableOSUpdates)"),
    OPT("product_version", "Updates[].ProductVersion", STRING,
        "the OS version to update to"),
    OPT("max_user_deferrals", "Updates[].MaxUserDeferrals", INTEGER,
        "macOS InstallLater: how often the user may postpone"),
    ENUM("priority", "Updates[].Priority", STRING, "[\"Low\",\"High\"]",
         NULL, "macOS: the scan's priority"),
    END
};

static ngx_http_mdm_template_key_t  ngx_http_mdm_tk_settings[] = {
    LIST("settings", "Settings", DICT,
         "whole setting dictionaries with Apple's keys ({\"Item\": "
         "\"Wallpaper\", ...}), before those the other keys make"),
    OPT("device_name", "Settings[DeviceName].DeviceName", STRING,
        "the device's name"),
    OPT("host_name", "Settings[HostName].HostName", STRING,
        "macOS: the host name"),
    OPT("time_zone", "Settings[TimeZone].TimeZone", STRING,
        "an IANA time zone, e.g. Europe/Berlin"),
    OPT("bluetooth", "Settings[Bluetooth].Enabled", BOOLEAN,
        "turn Bluetooth on or off"),
    OPT("data_roaming", "Settings[DataRoaming].Enabled", BOOLEAN,
        "iOS: data roaming"),
    OPT("voice_roaming", "Settings[VoiceRoaming].Enabled", BOOLEAN,
        "iOS: voice roaming"),
    OPT("personal_hotspot", "Settings[PersonalHotspot].Enabled", BOOLEAN,
        "iOS: Personal Hotspot"),
    OPT("diagnostic_submission", "Settings[DiagnosticSubmission].Enabled",
        BOOLEAN, "send diagnostics to Apple"),
    OPT("app_analytics", "Settings[AppAnalytics].Enabled", BOOLEAN,
        "share app analytics with developers"),
    OPT("maximum_resident_users",
        "Settings[MaximumResidentUsers].MaximumResidentUsers", INTEGER,
        "Shared iPad: users kept on the device"),
    ENUM("passcode_lock_grace_period",
         "Settings[PasscodeLockGracePeriod].PasscodeLockGracePeriod",
         INTEGER, "[0,60,300,900,3600,14400]", NULL,
         "Shared iPad: seconds before the passcode is asked"),
    ENUM("software_update_recommendation_cadence",
         "Settings[SoftwareUpdateSettings].RecommendationCadence",
         INTEGER, "[0,1,2]", NULL,
         "0: all updates, 1: the oldest minor, 2: the newest major"),
    OPT("organization_info",
        "Settings[OrganizationInfo].OrganizationInfo", DICT,
        "{\"OrganizationName\": ..., ...}"),
    OPT("mdm_options", "Settings[MDMOptions].MDMOptions", DICT,
        "{\"BootstrapTokenAllowed\": true, ...}"),
    END
};

static ngx_http_mdm_template_key_t  ngx_http_mdm_tk_lost_mode[] = {
    OPT("message", "Message", STRING, "shown on the Lock screen"),
    OPT("phone_number", "PhoneNumber", STRING, "shown on the Lock screen"),
    OPT("footnote", "Footnote", STRING, "shown under the message"),
    END
};

static ngx_http_mdm_template_key_t  ngx_http_mdm_tk_declarative[] = {
    OPT("data", "Data", DATA,
        "the SynchronizationTokens JSON (base64); without it the device "
        "just asks for the declarations"),
    END
};

static ngx_http_mdm_template_key_t  ngx_http_mdm_tk_delete_user[] = {
    OPT("user_name", "UserName", STRING, "the user's short name"),
    OPT("force_deletion", "ForceDeletion", BOOLEAN,
        "delete even with unsynced data"),
    OPT("delete_all_users", "DeleteAllUsers", BOOLEAN,
        "Shared iPad: delete every user"),
    END
};

static ngx_http_mdm_template_key_t  ngx_http_mdm_tk_firmware_password[] = {
    OPT("current_password", "CurrentPassword", STRING,
        "the password set now, if any"),
    REQ("new_password", "NewPassword", STRING, "\"\" removes the password"),
    OPT("allow_oroms", "AllowOroms", BOOLEAN,
        "Intel Macs: allow option ROMs"),
    END
};

static ngx_http_mdm_template_key_t  ngx_http_mdm_tk_recovery_lock[] = {
    OPT("current_password", "CurrentPassword", STRING,
        "the password set now, if any"),
    REQ("new_password", "NewPassword", STRING, "\"\" removes the lock"),
    END
};


ngx_http_mdm_template_t  ngx_http_mdm_templates[] = {
    { "DeviceInformation", NULL, NULL, NULL, 0,
      "query device attributes (updates the inventory)",
      ngx_http_mdm_tk_device_information },
    { "SecurityInfo", NULL, NULL, NULL, 0,
      "query the security state (updates the inventory)",
      ngx_http_mdm_tk_none },
    { "ProfileList", NULL, NULL, NULL, 0, "list installed profiles",
      ngx_http_mdm_tk_managed_only },
    { "InstalledApplicationList", NULL, NULL, NULL, 0,
      "list installed apps", ngx_http_mdm_tk_installed_apps },
    { "ManagedApplicationList", NULL, NULL, NULL, 0,
      "list the apps this server manages", ngx_http_mdm_tk_managed_apps },
    { "CertificateList", NULL, NULL, NULL, 0, "list installed certificates",
      ngx_http_mdm_tk_managed_only },
    { "AvailableOSUpdates", NULL, NULL, NULL, 0,
      "list the OS updates the device could install", ngx_http_mdm_tk_none },
    { "RestartDevice", NULL, NULL, NULL, 0, "restart the device",
      ngx_http_mdm_tk_restart },
    { "ShutDownDevice", NULL, NULL, NULL, 0, "shut the device down",
      ngx_http_mdm_tk_none },
    { "DeviceLock", NULL, NULL, NULL, 0, "lock the device",
      ngx_http_mdm_tk_device_lock },
    { "EraseDevice", NULL, NULL, NULL, 0, "erase the device",
      ngx_http_mdm_tk_erase },
    { "ClearPasscode", NULL, NULL, NULL, NGX_HTTP_MDM_TPL_UNLOCK,
      "remove the passcode (iOS)", ngx_http_mdm_tk_clear_passcode },
    { "InstallProfile", NULL, NULL, NULL, 0, "install a profile",
      ngx_http_mdm_tk_install_profile },
    { "RemoveProfile", NULL, NULL, NULL, 0, "remove a profile",
      ngx_http_mdm_tk_identifier },
    { "InstallApplication", "itunes_store_id identifier manifest_url", NULL,
      NULL, 0, "install an App Store or in-house app",
      ngx_http_mdm_tk_install_app },
    { "InstallEnterpriseApplication", "manifest manifest_url", NULL, NULL, 0,
      "install an in-house app or a macOS package (bootstrap packages)",
      ngx_http_mdm_tk_install_enterprise },
    { "RemoveApplication", NULL, NULL, NULL, 0, "remove a managed app",
      ngx_http_mdm_tk_identifier },
    { "ScheduleOSUpdate", NULL, NULL, "Updates", 0,
      "download and install OS updates", ngx_http_mdm_tk_schedule_update },
    { "Settings", NULL, NULL, "Settings", 0, "change device settings",
      ngx_http_mdm_tk_settings },
    { "DeviceConfigured", NULL, NULL, NULL, 0,
      "let an ADE device leave Setup Assistant's Remote Management pane",
      ngx_http_mdm_tk_none },
    { "EnableLostMode", NULL, "message phone_number", NULL, 0,
      "put a supervised device in Lost Mode", ngx_http_mdm_tk_lost_mode },
    { "DisableLostMode", NULL, NULL, NULL, 0, "end Lost Mode",
      ngx_http_mdm_tk_none },
    { "PlayLostModeSound", NULL, NULL, NULL, 0,
      "play a sound on a device in Lost Mode", ngx_http_mdm_tk_none },
    { "ActivationLockBypassCode", NULL, NULL, NULL, 0,
      "get the Activation Lock bypass code", ngx_http_mdm_tk_none },
    { "DeclarativeManagement", NULL, NULL, NULL, 0,
      "make the device synchronize its declarations",
      ngx_http_mdm_tk_declarative },
    { "UserList", NULL, NULL, NULL, 0, "list the users (macOS, Shared iPad)",
      ngx_http_mdm_tk_none },
    { "LogOutUser", NULL, NULL, NULL, 0, "log the user out (Shared iPad)",
      ngx_http_mdm_tk_none },
    { "DeleteUser", NULL, "user_name delete_all_users", NULL, 0,
      "delete a user (macOS, Shared iPad)", ngx_http_mdm_tk_delete_user },
    { "SetFirmwarePassword", NULL, NULL, NULL, 0,
      "set the firmware password (Intel Macs)",
      ngx_http_mdm_tk_firmware_password },
    { "SetRecoveryLock", NULL, NULL, NULL, 0,
      "set the Recovery Lock password (Apple silicon Macs)",
      ngx_http_mdm_tk_recovery_lock },
    { NULL, NULL, NULL, NULL, 0, NULL, NULL }
};
