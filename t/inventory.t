# The inventory (issue 12): Acknowledged DeviceInformation and SecurityInfo
# answers update a few fields of the device's enrollment hash (read in C,
# ngx_http_mdm_inventory.c; stored by lua/connect.lua), shown by
# GET /v1/enrollments[/ID] and filtered by serial, model, os_version,
# last_seen_before. Answers from the vectors of ../shared/vectors.

use Test::Nginx::Socket 'no_plan';
use t::MDM;
use t::MDMApi;

use JSON::PP ();
use MIME::Base64 qw(encode_base64);

no_shuffle();

our $KEY = 'inv-key';
our $AUTH = 'Authorization: Basic ' . encode_base64("nanomdm:$KEY", '');
our $MAC = '66ADE930-5FDF-5EC4-8429-15640684C489';

mdm_defaults(
    http_config => 'mdm_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;',
    config => qq{
        mdm_identity_ca \$TEST_NGINX_PKI/identity-ca.pem;
        location = /mdm { mdm_server; }
        location /v1/ { mdm_api; mdm_api_key $KEY; }
    },
    more_headers => $AUTH,
);

sub dev {
    my ($body, $checkin) = @_;
    my $type = $checkin ? $t::MDM::CheckinType : 'application/x-apple-aspen-mdm';
    my $res = concurrent_requests(server_port(), [ http_request('PUT', '/mdm', $body,
        [ 'Content-Type' => $type, 'Mdm-Signature' => mdm_signature($body, 'mac') ]) ])->[0];
    die "device request: $res->{error}\n" if $res->{error};
    return $res;
}

sub enroll {
    dev(vector('nanomdm/mdm/testdata/Authenticate.2.plist'), 1);
    dev(vector('nanomdm/mdm/testdata/TokenUpdate.2.plist'), 1);
}

# queues a template command with this UUID and has the device answer it
# with the vector (its top-level UDID and CommandUUID replaced)
sub answer {
    my ($rtype, $uuid, $vector, %opt) = @_;
    my $q = api('POST', "/v1/commands/$main::MAC?nopush=1",
                JSON::PP->new->encode({ request_type => $rtype, command_uuid => $uuid }));
    die "enqueue: $q->{body}" unless $q->{status} == 200;
    my $body = plist_set(vector($vector), UDID => $main::MAC, CommandUUID => $uuid,
                         Status => $opt{status} // 'Acknowledged');
    $body = $opt{edit}->($body) if $opt{edit};
    return dev($body, 0);
}

sub inv { my %h = @{ redis('HGETALL', "mdm:enr:{$main::MAC}") }; return \%h }

sub log_lines {
    open my $fh, '<', $Test::Nginx::Socket::ErrLogFile or return 0;
    return scalar grep { /\[(?:info|notice|warn|error|crit|alert)\].*mdm: inventory/ } <$fh>;
}

{
    no strict 'refs';
    *{"Test::Base::Filter::$_"} = \&{"main::$_"} for qw(dev enroll answer inv log_lines);
}

run_tests();

__DATA__

=== TEST 1: DeviceInformation (macOS vector) fills serial, model, OS version and build, name, storage; SecurityInfo FileVault; GET /v1/enrollments/ID shows them typed
--- redis_setup
FLUSHALL
--- request
GET /v1/templates/UserList
--- error_code: 200
--- json eval
sub {
    enroll();
    my $before = inv();
    Test::More::is($before->{serial_number}, 'C02MT66KFLHH', 'Authenticate gave the serial');
    my $r = answer('DeviceInformation', 'INV-DI-1',
                   'commandment/testdata/DeviceInformation/macOS-10.13.1.xml');
    Test::More::is($r->{status}, 200, 'report taken');
    my $h = inv();
    Test::More::is_deeply({ map { $_ => $h->{$_} } qw(serial_number model model_name product_name
            os_version build_version device_name device_capacity available_device_capacity) },
        { serial_number => 'AB123CD45G', model => 'MacPro6,1', model_name => 'Mac Pro',
          product_name => 'MacPro6,1', os_version => '10.13.1', build_version => '17B48',
          device_name => 'commandment', device_capacity => '953.67',
          available_device_capacity => '217.90' }, 'the inventory fields');
    Test::More::ok($h->{inventory_at} >= $before->{last_seen}, 'inventory_at');
    Test::More::is(redis('OBJECT', 'ENCODING', "mdm:enr:{$main::MAC}"), 'listpack',
                   'the hash stays a listpack');

    answer('SecurityInfo', 'INV-SI-1', 'commandment/testdata/SecurityInfo/macOS-10.13.1.xml');
    Test::More::is(inv()->{filevault_enabled}, '0', 'FileVault off');

    my $e = api('GET', "/v1/enrollments/$main::MAC")->{json};
    Test::More::is($e->{serial_number}, 'AB123CD45G', 'shown');
    Test::More::ok(JSON::PP::is_bool($e->{filevault_enabled}) && !$e->{filevault_enabled},
                   'filevault_enabled a boolean');
    Test::More::is($e->{device_capacity}, 953.67, 'device_capacity a number');
    Test::More::ok($e->{inventory_at} > 0, 'inventory_at a number');
    1;
}



=== TEST 2: iOS vectors: passcode state, battery; a report that is not Acknowledged, or for a command never queued to the device, changes nothing; a value over 64 bytes is left out with one log line
--- redis_setup
FLUSHALL
--- request
GET /v1/templates/UserList
--- error_code: 200
--- json eval
sub {
    enroll();
    answer('DeviceInformation', 'INV-IOS', 'commandment/testdata/DeviceInformation/iOS-11.3.1.xml',
           edit => sub { my $b = shift; $b =~ s{(<key>QueryResponses</key>\s*<dict>)}
                          {$1<key>BatteryLevel</key><real>0.8125</real>}; $b });
    my $h = inv();
    Test::More::is_deeply([ @$h{qw(serial_number model os_version build_version battery_level)} ],
        [ 'C00000000004', 'MD786X', '11.3.1', '15E302', '0.81' ], 'iOS inventory');
    answer('SecurityInfo', 'INV-IOS-SI', 'commandment/testdata/SecurityInfo/iOS-11.3.1.xml');
    $h = inv();
    Test::More::is_deeply([ @$h{qw(passcode_present passcode_compliant)} ], [ '0', '1' ],
                          'passcode state');

    answer('DeviceInformation', 'INV-ERR', 'commandment/testdata/DeviceInformation/macOS-10.13.1.xml',
           status => 'Error');
    Test::More::is(inv()->{serial_number}, 'C00000000004', 'an Error report: unchanged');

    my $body = plist_set(vector('commandment/testdata/DeviceInformation/macOS-10.13.1.xml'),
                         UDID => $main::MAC, CommandUUID => 'NEVER-QUEUED');
    dev($body, 0);
    Test::More::is(inv()->{serial_number}, 'C00000000004', 'a command never queued: unchanged');

    my $before = log_lines();
    answer('DeviceInformation', 'INV-LONG', 'commandment/testdata/DeviceInformation/iOS-11.3.1.xml',
           edit => sub { my $b = shift; my $x = 'N' x 65;
                         $b =~ s{<key>DeviceName</key>\s*<string>[^<]*</string>}
                                {<key>DeviceName</key><string>$x</string>}; $b });
    Test::More::is(inv()->{device_name}, 'iPad', 'the long name is left out');
    Test::More::is(log_lines() - $before, 1, 'one log line');
    Test::More::is(redis('OBJECT', 'ENCODING', "mdm:enr:{$main::MAC}"), 'listpack', 'still a listpack');
    1;
}



=== TEST 3: GET /v1/enrollments filters: serial, model, os_version (a version prefix), last_seen_before, with the others
--- redis_setup eval
[ [ "FLUSHALL" ],
  [ "HSET", "mdm:enr:{A}", "type", "Device", "enabled", "1", "serial_number", "SA", "model", "MacPro6,1", "os_version", "14.4.1", "last_seen", "1000" ],
  [ "HSET", "mdm:enr:{B}", "type", "Device", "enabled", "1", "serial_number", "SB", "model", "iPad4,1", "os_version", "17.4", "last_seen", "2000" ],
  [ "HSET", "mdm:enr:{C}", "type", "Device", "enabled", "0", "serial_number", "SC", "model", "iPad4,1", "os_version", "17.41", "last_seen", "3000" ],
  [ "HSET", "mdm:enr:{C}:U", "type", "User", "enabled", "1", "last_seen", "500" ] ]
--- request eval
[ "GET /v1/enrollments?serial=SB&limit=1000", "GET /v1/enrollments?model=iPad4,1&limit=1000",
  "GET /v1/enrollments?os_version=17.4&limit=1000", "GET /v1/enrollments?os_version=14&limit=1000",
  "GET /v1/enrollments?last_seen_before=2500&limit=1000",
  "GET /v1/enrollments?model=iPad4,1&enabled=1&limit=1000",
  "GET /v1/enrollments?last_seen_before=x", "GET /v1/enrollments?serial=" . ("S" x 65) ]
--- error_code eval
[ 200, 200, 200, 200, 200, 200, 400, 400 ]
--- json eval
my $ids = sub { my @w = @_; sub { Test::More::is_deeply([ sort map { $_->{id} } @{ $_[0]{enrollments} } ], \@w); 1 } };
[ $ids->('B'), $ids->('B', 'C'), $ids->('B'), $ids->('A'), $ids->('A', 'B', 'C:U'), $ids->('B'),
  { error => qr/last_seen_before/ }, { error => qr/at most 64/ } ]



=== TEST 4: a command's result_ttl (the worker's inventory commands set it) bounds how long its result is kept; without it mdm_result_ttl
--- redis_setup
FLUSHALL
--- request
GET /v1/templates/UserList
--- error_code: 200
--- json eval
sub {
    enroll();
    my $q = api('POST', "/v1/commands/$main::MAC?nopush=1",
                '{"request_type":"DeviceInformation","command_uuid":"INV-TTL"}');
    redis('HSET', 'mdm:cmd:INV-TTL', 'result_ttl', '120');
    my $r = dev(plist_set(vector('nanomdm/mdm/testdata/Authenticate.2.plist'), MessageType => undef,
                          Status => 'Idle', UDID => $main::MAC), 0);
    Test::More::like($r->{body}, qr/INV-TTL/, 'delivered');
    my $ttl = redis('TTL', "mdm:r:{$main::MAC}:INV-TTL");
    Test::More::ok($ttl > 0 && $ttl <= 120, "at delivery: $ttl");
    answer('DeviceInformation', 'INV-TTL2', 'commandment/testdata/DeviceInformation/iOS-11.3.1.xml');
    dev(plist_set(vector('commandment/testdata/DeviceInformation/iOS-11.3.1.xml'),
                  UDID => $main::MAC, CommandUUID => 'INV-TTL'), 0);
    $ttl = redis('TTL', "mdm:r:{$main::MAC}:INV-TTL");
    Test::More::ok($ttl > 0 && $ttl <= 120, "after the answer: $ttl");
    Test::More::is(redis('HGET', "mdm:r:{$main::MAC}:INV-TTL", 'status'), 'Acknowledged', 'stored');
    $ttl = redis('TTL', "mdm:r:{$main::MAC}:INV-TTL2");
    Test::More::ok($ttl > 2592000 - 60, "a command without it: mdm_result_ttl ($ttl)");
    1;
}
