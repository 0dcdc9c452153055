# Every check-in MessageType with real device bodies from ../shared/vectors,
# signed at test time the way devices sign them.

use Test::Nginx::Socket 'no_plan';
use t::MDM;

no_shuffle();

mdm_defaults(
    http_config => 'mdm_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;',
    config => q{
        location = /mdm/checkin {
            mdm_checkin;
            mdm_identity_ca $TEST_NGINX_PKI/identity-ca.pem;
            mdm_store_authenticate on;
            add_header X-Id $mdm_enrollment_id always;
            add_header X-Type $mdm_enrollment_type always;
            add_header X-Msg $mdm_message_type always;
            add_header X-Udid $mdm_udid always;
        }
        location = /default/checkin {
            mdm_checkin;
            mdm_identity_ca $TEST_NGINX_PKI/identity-ca.pem;
        }
    },
    more_headers => "Content-Type: $t::MDM::CheckinType",
);

our $MAC = '66ADE930-5FDF-5EC4-8429-15640684C489';
our $MACUSER = 'A522C2FB-D0BA-487E-BBC6-BE0DB2DC7883';
our $IOS = '663b07bb09eb3e5bb6c2b6a2c2fa7e1a4a1d5b69';

run_tests();

__DATA__

=== TEST 1: Authenticate (macOS) stores the enrollment, disabled until TokenUpdate
--- request eval
checkin_request("nanomdm/mdm/testdata/Authenticate.2.plist")
--- signed_by: mac
--- error_code: 200
--- response_body
--- response_headers
X-Id: 66ADE930-5FDF-5EC4-8429-15640684C489
X-Type: Device
X-Msg: Authenticate
X-Udid: 66ADE930-5FDF-5EC4-8429-15640684C489
--- redis_check eval
my $k = "mdm:enr:{$::MAC}";
[
  [ "HGET $k enabled", "0" ],
  [ "HGET $k type", "Device" ],
  [ "HGET $k serial_number", "C02MT66KFLHH" ],
  [ "HGET $k os_version", "10.12.6" ],
  [ "HGET $k build_version", "16G2136" ],
  [ "HGET $k model", "iMac14,2" ],
  [ "HGET $k model_name", "iMac" ],
  [ "HGET $k device_name", "Fruit" ],
  [ "HGET $k topic", "com.apple.mgmt.External.e0bd1eac-1f17-4c8e-8a63-dd17d3dd35d9" ],
  [ "HGET $k token_update_tally", "0" ],
  [ "GET mdm:auth:{$::MAC}", vector("nanomdm/mdm/testdata/Authenticate.2.plist") =~ s/\s+\z//r ],
  [ "OBJECT ENCODING $k", "listpack" ],
  [ "HGET $k " . cert_sha256("mac"), qr/^\d{10}$/ ],
  [ "HEXISTS $k device_id", "0" ],
  [ "HEXISTS $k udid", "0" ],
  [ "GET mdm:certidx:" . cert_sha256("mac"), $::MAC ],
  [ "XLEN mdm:events", "1" ],
]
--- no_error_log
[error]



=== TEST 2: TokenUpdate (macOS device channel) enables it and records the push data
--- request eval
checkin_request("nanomdm/mdm/testdata/TokenUpdate.2.plist")
--- signed_by: mac
--- error_code: 200
--- response_body
--- redis_check eval
my $k = "mdm:enr:{$::MAC}";
[
  [ "HGET $k enabled", "1" ],
  [ "HGET $k token", qr/^[0-9a-f]{64}$/ ],
  [ "HGET $k push_magic", plist_get(vector("nanomdm/mdm/testdata/TokenUpdate.2.plist"), "PushMagic") ],
  [ "HGET $k token_update_tally", "1" ],
  [ "HGET $k serial_number", "C02MT66KFLHH" ],
]
--- no_error_log
[error]



=== TEST 3: TokenUpdate on the macOS user channel creates the user enrollment, linked to its device
--- request eval
checkin_request("commandment/testdata/TokenUpdate/10.12.2-user.xml", UDID => $::MAC)
--- signed_by: mac
--- error_code: 200
--- response_headers
X-Id: 66ADE930-5FDF-5EC4-8429-15640684C489:A522C2FB-D0BA-487E-BBC6-BE0DB2DC7883
X-Type: User
--- redis_check eval
my $k = "mdm:enr:{$::MAC}:$::MACUSER";
[
  [ "HGET $k type", "User" ],
  [ "HGET $k parent", $::MAC ],
  [ "HGET $k enabled", "1" ],
  [ "HGET $k user_short_name", "cjoe" ],
  [ "HGET $k user_long_name", "Commando Joe" ],
  [ "HGET $k not_on_console", "0" ],
  [ "HGET $k token_update_tally", "1" ],
  [ "SMEMBERS mdm:users:{$::MAC}", [ ":$::MACUSER" ] ],
  [ "HGET mdm:enr:{$::MAC} token_update_tally", "1" ],
]
--- no_error_log
[error]



=== TEST 4: UserAuthenticate is declined with 410 by default
--- request eval
checkin_request("commandment/testdata/TokenUpdate/10.12.2-user.xml", UDID => $::MAC,
    MessageType => "UserAuthenticate", Token => undef, PushMagic => undef, Topic => undef)
--- signed_by: mac
--- error_code: 410
--- error_log
UserAuthenticate from enrollment "66ADE930-5FDF-5EC4-8429-15640684C489:A522C2FB-D0BA-487E-BBC6-BE0DB2DC7883" declined



=== TEST 5: UserAuthenticate with mdm_user_authenticate allow: a zero-length DigestChallenge
--- config
location = /mdm/checkin {
    mdm_checkin;
    mdm_identity_ca $TEST_NGINX_PKI/identity-ca.pem;
    mdm_user_authenticate allow;
}
--- request eval
checkin_request("commandment/testdata/TokenUpdate/10.12.2-user.xml", UDID => $::MAC,
    MessageType => "UserAuthenticate", Token => undef, PushMagic => undef, Topic => undef)
--- signed_by: mac
--- error_code: 200
--- response_headers
Content-Type: application/xml
--- response_body_like chomp
<key>DigestChallenge</key>\s*<string></string>
--- no_error_log
[error]



=== TEST 6: the second UserAuthenticate (with DigestResponse) gets an empty 200
--- config
location = /mdm/checkin {
    mdm_checkin;
    mdm_identity_ca $TEST_NGINX_PKI/identity-ca.pem;
    mdm_user_authenticate allow;
}
--- request eval
checkin_request("commandment/testdata/TokenUpdate/10.12.2-user.xml", UDID => $::MAC,
    MessageType => "UserAuthenticate", Token => undef, PushMagic => undef, Topic => undef,
    DigestResponse => "abc")
--- signed_by: mac
--- error_code: 200
--- response_body
--- no_error_log
[error]



=== TEST 7: SetBootstrapToken escrows the token
--- request eval
checkin_request("commandment/testdata/CheckOut/10.11.x.xml", UDID => $::MAC,
    MessageType => "SetBootstrapToken", Topic => undef,
    BootstrapToken => \'<data>Ym9vdHN0cmFwLXRva2Vu</data>')
--- signed_by: mac
--- error_code: 200
--- response_body
--- redis_check eval
[ [ "HGET mdm:enr:{$::MAC} bootstrap_token", "Ym9vdHN0cmFwLXRva2Vu" ] ]
--- no_error_log
[error]



=== TEST 8: GetBootstrapToken returns it as a plist
--- request eval
checkin_request("commandment/testdata/CheckOut/10.11.x.xml", UDID => $::MAC,
    MessageType => "GetBootstrapToken", Topic => undef)
--- signed_by: mac
--- error_code: 200
--- response_headers
Content-Type: application/xml
--- response_body_like
<key>BootstrapToken</key>\s*<data>\s*Ym9vdHN0cmFwLXRva2Vu\s*</data>
--- no_error_log
[error]



=== TEST 9: SetBootstrapToken without a token deletes the escrowed one
--- request eval
checkin_request("commandment/testdata/CheckOut/10.11.x.xml", UDID => $::MAC,
    MessageType => "SetBootstrapToken", Topic => undef)
--- signed_by: mac
--- error_code: 200
--- redis_check eval
[ [ "HEXISTS mdm:enr:{$::MAC} bootstrap_token", "0" ] ]
--- no_error_log
[error]



=== TEST 10: GetBootstrapToken with none escrowed is an empty 200
--- request eval
checkin_request("commandment/testdata/CheckOut/10.11.x.xml", UDID => $::MAC,
    MessageType => "GetBootstrapToken", Topic => undef)
--- signed_by: mac
--- error_code: 200
--- response_body
--- response_headers
Content-Length: 0
--- no_error_log
[error]



=== TEST 11: CheckOut disables the device and its user channels
--- request eval
checkin_request("commandment/testdata/CheckOut/10.11.x.xml", UDID => $::MAC)
--- signed_by: mac
--- error_code: 200
--- redis_check eval
[
  [ "HGET mdm:enr:{$::MAC} enabled", "0" ],
  [ "HGET mdm:enr:{$::MAC}:$::MACUSER enabled", "0" ],
  [ "HGET mdm:enr:{$::MAC} checked_out_at", qr/^\d{13}$/ ],
]
--- no_error_log
[error]



=== TEST 12: a new Authenticate clears the queues of the device and its user channels and resets the tally
--- redis_setup eval
[ [ "RPUSH", "mdm:q:{$::MAC}", "cmd-1" ], [ "RPUSH", "mdm:q:{$::MAC}:$::MACUSER", "cmd-2" ],
  [ "HSET", "mdm:enr:{$::MAC}", "bootstrap_token", "b2xk" ] ]
--- request eval
checkin_request("nanomdm/mdm/testdata/Authenticate.2.plist")
--- signed_by: mac
--- error_code: 200
--- redis_check eval
[
  [ "EXISTS mdm:q:{$::MAC}", "0" ],
  [ "EXISTS mdm:q:{$::MAC}:$::MACUSER", "0" ],
  [ "HGET mdm:r:{$::MAC}:cmd-1 status", "Cleared" ],
  [ "HGET mdm:r:{$::MAC}:$::MACUSER:cmd-2 status", "Cleared" ],
  [ "HGET mdm:enr:{$::MAC} enabled", "0" ],
  [ "HGET mdm:enr:{$::MAC}:$::MACUSER enabled", "0" ],
  [ "HGET mdm:enr:{$::MAC} token_update_tally", "0" ],
  [ "HEXISTS mdm:enr:{$::MAC} bootstrap_token", "0" ],
  [ "HEXISTS mdm:enr:{$::MAC} token", "0" ],
]
--- no_error_log
[error]



=== TEST 13: Authenticate (iOS, 40-hex UDID)
--- request eval
checkin_request("nanomdm/mdm/testdata/Authenticate.1.plist")
--- signed_by: ios
--- error_code: 200
--- response_headers
X-Type: Device
--- redis_check eval
my @id = (plist_get(vector("nanomdm/mdm/testdata/Authenticate.1.plist"), "UDID"));
[ [ "HGET mdm:enr:{$id[0]} enabled", "0" ], [ "HGET mdm:enr:{$id[0]} type", "Device" ] ]
--- no_error_log
[error]



=== TEST 14: TokenUpdate (iOS) keeps the UnlockToken and AwaitingConfiguration
--- request eval
checkin_request("nanomdm/mdm/testdata/TokenUpdate.1.plist",
    UDID => plist_get(vector("nanomdm/mdm/testdata/Authenticate.1.plist"), "UDID"))
--- signed_by: ios
--- error_code: 200
--- redis_check eval
my $id = plist_get(vector("nanomdm/mdm/testdata/Authenticate.1.plist"), "UDID");
[
  [ "HGET mdm:enr:{$id} unlock_token", qr/^[A-Za-z0-9+\/]{100,}=*$/ ],
  [ "HGET mdm:enr:{$id} awaiting_configuration", "0" ],
  [ "HGET mdm:enr:{$id} enabled", "1" ],
]
--- no_error_log
[error]



=== TEST 15: a later TokenUpdate without UnlockToken keeps the stored one; the tally counts
--- request eval
checkin_request("nanomdm/mdm/testdata/TokenUpdate.1.plist",
    UDID => plist_get(vector("nanomdm/mdm/testdata/Authenticate.1.plist"), "UDID"),
    UnlockToken => undef, AwaitingConfiguration => \'<true/>')
--- signed_by: ios
--- error_code: 200
--- redis_check eval
my $id = plist_get(vector("nanomdm/mdm/testdata/Authenticate.1.plist"), "UDID");
[
  [ "HGET mdm:enr:{$id} unlock_token", qr/^[A-Za-z0-9+\/]{100,}=*$/ ],
  [ "HGET mdm:enr:{$id} awaiting_configuration", "1" ],
  [ "HGET mdm:enr:{$id} token_update_tally", "2" ],
]
--- no_error_log
[error]



=== TEST 16: User Enrollment device channel (EnrollmentID, no UDID)
--- request eval
checkin_request("nanomdm/mdm/testdata/Authenticate.1.plist", UDID => undef,
    EnrollmentID => "UE-1234-ABCD", SerialNumber => undef, IMEI => undef, MEID => undef)
--- signed_by: ue
--- error_code: 200
--- response_headers
X-Id: UE-1234-ABCD
X-Type: User Enrollment (Device)
--- redis_check
HGET mdm:enr:{UE-1234-ABCD} type => User Enrollment (Device)
HEXISTS mdm:enr:{UE-1234-ABCD} enrollment_id => 0



=== TEST 17: User Enrollment user channel (EnrollmentID + EnrollmentUserID)
--- request eval
checkin_request("commandment/testdata/TokenUpdate/10.12.2-user.xml", UDID => undef,
    UserID => undef, EnrollmentID => "UE-1234-ABCD", EnrollmentUserID => "EU-77")
--- signed_by: ue
--- error_code: 200
--- response_headers
X-Id: UE-1234-ABCD:EU-77
X-Type: User Enrollment
--- redis_check
HGET mdm:enr:{UE-1234-ABCD}:EU-77 type => User Enrollment
HGET mdm:enr:{UE-1234-ABCD}:EU-77 parent => UE-1234-ABCD
SMEMBERS mdm:users:{UE-1234-ABCD} => :EU-77



=== TEST 18: Shared iPad user channel: UserID all F, id is UDID:UserShortName
--- request eval
checkin_request("commandment/testdata/TokenUpdate/10.12.2-user.xml",
    UDID => plist_get(vector("nanomdm/mdm/testdata/Authenticate.1.plist"), "UDID"),
    UserID => "FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF", UserShortName => 'student@example.org')
--- signed_by: ios
--- error_code: 200
--- response_headers_like
X-Id: ^[0-9a-f]{40}:student\@example\.org$
X-Type: ^Shared iPad$



=== TEST 19: DeclarativeManagement is served (t/ddm.t tests it through)
--- request eval
checkin_request("commandment/testdata/CheckOut/10.11.x.xml", UDID => $::MAC,
    MessageType => "DeclarativeManagement", Endpoint => "tokens")
--- signed_by: mac
--- error_code: 200
--- response_body_like: ^\{"SyncTokens":\{"DeclarationsToken":"[0-9a-f]{40}","Timestamp":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"\}\}$
--- no_error_log
[error]



=== TEST 20: GetToken likewise
--- request eval
checkin_request("commandment/testdata/CheckOut/10.11.x.xml", UDID => $::MAC,
    MessageType => "GetToken", TokenServiceType => "com.apple.maid")
--- signed_by: mac
--- error_code: 501
--- error_log
GetToken from enrollment "66ADE930-5FDF-5EC4-8429-15640684C489" answered 501



=== TEST 21: the event stream carries every accepted message (DeclarativeManagement too), with the query string and raw body
--- request eval
checkin_request("/mdm/checkin?tenant=acme&x=1 nanomdm/mdm/testdata/TokenUpdate.2.plist")
--- signed_by: mac
--- error_code: 200
--- redis_check eval
my $last = ["XREVRANGE", "mdm:events", "+", "-", "COUNT", "1"];
my $field = sub { my ($f, $want) = @_; sub { my %h = @{ $_[0][0][1] }; $h{$f} eq $want } };
[
  [ "XLEN mdm:events", "19" ],
  [ $last, $field->(type => "TokenUpdate") ],
  [ $last, $field->(id => $::MAC) ],
  [ $last, $field->(enrollment_type => "Device") ],
  [ $last, $field->(params => "tenant=acme&x=1") ],
  [ $last, $field->(token_update_tally => "1") ],
  [ $last, $field->(body => vector("nanomdm/mdm/testdata/TokenUpdate.2.plist") =~ s/\s+\z//r) ],
]
--- no_error_log
[error]



=== TEST 22: without mdm_store_authenticate the raw Authenticate is not kept (an older copy goes); the event stream still has it
--- redis_setup
SET mdm:auth:{66ADE930-5FDF-5EC4-8429-15640684C489} old
--- request eval
checkin_request("/default/checkin nanomdm/mdm/testdata/Authenticate.2.plist")
--- signed_by: mac
--- error_code: 200
--- redis_check eval
my $k = "mdm:enr:{$::MAC}";
my $last = ["XREVRANGE", "mdm:events", "+", "-", "COUNT", "1"];
[
  [ "EXISTS mdm:auth:{$::MAC}", "0" ],
  [ "HGET $k serial_number", "C02MT66KFLHH" ],
  [ "HGET $k " . cert_sha256("mac"), qr/^\d{10}$/ ],
  [ "OBJECT ENCODING $k", "listpack" ],
  [ $last, sub { my %h = @{ $_[0][0][1] };
                 $h{type} eq "Authenticate"
                 && $h{body} eq vector("nanomdm/mdm/testdata/Authenticate.2.plist") =~ s/\s+\z//r } ],
]
--- no_error_log
[error]
