# Enrollment blueprints (issue 12, contract B1): PUT/GET/DELETE
# /v1/blueprints, and the run inside lua/checkin.lua's TokenUpdate: on the
# device channel's first TokenUpdate since Authenticate the matching
# blueprint's commands are queued in order with a push, DeviceConfigured
# last for a device AwaitingConfiguration when the blueprint says so; not
# on a second TokenUpdate, again after a new Authenticate. Precedence:
# serials, then the DEP profile (mdm:dep:profiles, contract D2), then all.

use Test::Nginx::Socket 'no_plan';
use t::MDM;
use t::MDMApi;
use t::MDMSchema;

use JSON::PP ();
use MIME::Base64 qw(encode_base64);

no_shuffle();

our $KEY = 'bp-key';
our $AUTH = 'Authorization: Basic ' . encode_base64("nanomdm:$KEY", '');
our $JS = JSON::PP->new->canonical;
our $MAC = '66ADE930-5FDF-5EC4-8429-15640684C489';
our $SERIAL = 'C02MT66KFLHH';

mdm_defaults(
    http_config => 'mdm_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;',
    config => qq{
        mdm_identity_ca \$TEST_NGINX_PKI/identity-ca.pem;
        location = /mdm { mdm_server; }
        location /v1/ { mdm_api; mdm_api_key $KEY; }
    },
    more_headers => $AUTH,
);

# a device request to /mdm, signed by the test certificate "mac"
sub dev {
    my ($body, $checkin) = @_;
    my $type = $checkin ? $t::MDM::CheckinType : 'application/x-apple-aspen-mdm';
    my $res = concurrent_requests(server_port(), [ http_request('PUT', '/mdm', $body,
        [ 'Content-Type' => $type, 'Mdm-Signature' => mdm_signature($body, 'mac') ]) ])->[0];
    die "device request: $res->{error}\n" if $res->{error};
    return $res;
}

sub authenticate { dev(vector('nanomdm/mdm/testdata/Authenticate.2.plist'), 1) }

sub token_update {
    my (%set) = @_;
    my $awaiting = delete $set{awaiting};
    return dev(plist_set(vector('nanomdm/mdm/testdata/TokenUpdate.2.plist'),
        AwaitingConfiguration => \($awaiting ? '<true/>' : '<false/>'), %set), 1);
}

# the device's report of the command it was given, and the next command
sub report {
    my ($status, $uuid) = @_;
    my $b = qq{<?xml version="1.0" encoding="UTF-8"?>\n<plist version="1.0"><dict>}
          . qq{<key>Status</key><string>$status</string><key>UDID</key><string>$main::MAC</string>}
          . ($uuid ? "<key>CommandUUID</key><string>$uuid</string>" : '')
          . '</dict></plist>';
    return dev($b, 0);
}

sub queue { return redis('LRANGE', "mdm:q:{$main::MAC}", 0, -1) }
sub types { return [ map { redis('HGET', "mdm:cmd:$_", 'request_type') } @{ queue() } ] }

sub put_bp {
    my ($name, $bp) = @_;
    return api('PUT', "/v1/blueprints/$name", ref $bp ? $main::JS->encode($bp) : $bp);
}

our $PROFILE = encode_base64(qq{<?xml version="1.0"?><plist version="1.0"><dict>}
    . qq{<key>PayloadType</key><string>Configuration</string></dict></plist>}, '');

our %BOOT = (
    commands => [
        { request_type => 'InstallEnterpriseApplication',
          manifest_url => 'https://mdm.example.com/bootstrap.plist' },
        { request_type => 'InstallProfile', payload => $PROFILE },
        { plist => encode_base64(qq{<?xml version="1.0"?><plist version="1.0"><dict>}
            . qq{<key>CommandUUID</key><string>FIXED</string><key>Command</key><dict>}
            . qq{<key>RequestType</key><string>ProfileList</string></dict></dict></plist>}, '') },
        { request_type => 'Settings', device_name => 'Kiosk 1' },
    ],
    device_configured => JSON::PP::true,
    applies_to => { all => JSON::PP::true },
);

sub log_lines {
    open my $fh, '<', $Test::Nginx::Socket::ErrLogFile or return 0;
    return scalar grep { /\[(?:info|notice|warn|error|crit|alert)\].*mdm:/ } <$fh>;
}

sub refused {
    my ($name, $bp, $want, $like) = @_;
    my $before = log_lines();
    my $r = put_bp($name, $bp);
    Test::More::is($r->{status}, $want // 400, "refused: " . ($like // $name))
        or Test::More::diag($r->{body});
    Test::More::like($r->{json}{error} // '', $like, "why: $like") if $like;
    Test::More::is(log_lines() - $before, 1, "one log line: " . ($like // $name));
}

{
    no strict 'refs';
    *{"Test::Base::Filter::$_"} = \&{"main::$_"}
        for qw(dev authenticate token_update report queue types put_bp refused log_lines);
    *{"Test::Base::Filter::$_"} = \&{"t::MDMSchema::$_"} for qw(plist_parse schema_check);
}

run_tests();

__DATA__

=== TEST 1: a typical blueprint runs on the first TokenUpdate: in order, DeviceConfigured last, one push; each plist fits Apple's schema and carries its own CommandUUID
--- redis_setup
FLUSHALL
--- request
GET /v1/blueprints
--- error_code: 200
--- json eval
sub {
    my $r = put_bp('bootstrap', \%main::BOOT);
    Test::More::is($r->{status}, 201, 'created');
    Test::More::is($r->{json}{commands}, 4, 'four commands');
    Test::More::is(authenticate()->{status}, 200, 'Authenticate');
    Test::More::is_deeply(queue(), [], 'nothing queued at Authenticate');
    Test::More::is(token_update(awaiting => 1)->{status}, 200, 'TokenUpdate');
    Test::More::is_deeply(types(), [ qw(InstallEnterpriseApplication InstallProfile
        ProfileList Settings DeviceConfigured) ], 'queued in order, DeviceConfigured last');
    Test::More::is_deeply(redis('LRANGE', 'mdm:push', 0, -1), [ $main::MAC ], 'one push');
    Test::More::is(redis('HGET', "mdm:enr:{$main::MAC}", 'blueprint'), 'bootstrap',
                   'the enrollment says which blueprint');
    # for the webhooks: a blueprint.run event right after the TokenUpdate's
    my @ev = map { +{ @{ $_->[1] } } } @{ redis('XRANGE', 'mdm:events', '-', '+') };
    Test::More::is_deeply([ map { $_->{type} } @ev ], [ qw(Authenticate TokenUpdate blueprint.run) ],
                          'events: Authenticate, TokenUpdate, then blueprint.run');
    Test::More::is_deeply({ map { $_ => $ev[2]{$_} } qw(id enrollment_id device_id blueprint request_types) },
        { id => $main::MAC, enrollment_id => $main::MAC, device_id => $main::MAC, blueprint => 'bootstrap',
          request_types => 'InstallEnterpriseApplication,InstallProfile,ProfileList,Settings,DeviceConfigured' },
        'blueprint.run names the enrollment, the blueprint and the request types in order');
    Test::More::is($ev[2]{command_uuids}, CORE::join(',', @{ queue() }), 'and the CommandUUIDs queued');
    # the device takes them one by one, as enqueued commands
    my $prev;
    for my $uuid (@{ queue() }) {
        my $res = report($prev ? ('Acknowledged', $prev) : ('Idle'));
        my $p = plist_parse($res->{body});
        Test::More::is($p->{v}{CommandUUID}{v}, $uuid, "delivered $uuid");
        Test::More::is_deeply([ schema_check($p) ], [], "$uuid fits its schema");
        Test::More::is_deeply([ grep { $_ eq 'CommandUUID' } @{ $p->{order} } ], [ 'CommandUUID' ],
                              "$uuid: one CommandUUID (a raw plist's own was dropped)");
        $prev = $uuid;
    }
    Test::More::is(report('Acknowledged', $prev)->{body}, '', 'then nothing');
    Test::More::is(redis('HGET', "mdm:r:{$main::MAC}:$prev", 'status'), 'Acknowledged',
                   'results are kept as for any command');
    my $e = api('GET', "/v1/enrollments/$main::MAC");
    Test::More::is($e->{json}{blueprint}, 'bootstrap', 'GET /v1/enrollments/ID shows it');
    Test::More::ok($e->{json}{blueprint_at} > 0, 'and when');
    1;
}



=== TEST 2: not re-run on a second TokenUpdate; re-run (new UUIDs) after a new Authenticate; not for a user channel; no DeviceConfigured unless awaiting
--- redis_setup
FLUSHALL
--- request
GET /v1/blueprints
--- error_code: 200
--- json eval
sub {
    put_bp('bootstrap', \%main::BOOT);
    authenticate();
    token_update();
    my $first = queue();
    Test::More::is_deeply(types(), [ qw(InstallEnterpriseApplication InstallProfile
        ProfileList Settings) ], 'not awaiting configuration: no DeviceConfigured');
    token_update();
    token_update(awaiting => 1);
    Test::More::is_deeply(queue(), $first, 'second and third TokenUpdate: not again');
    Test::More::is(scalar(grep { $_->[1][1] eq 'blueprint.run' } @{ redis('XRANGE', 'mdm:events', '-', '+') }), 1,
                   'one blueprint.run event so far');
    Test::More::is(token_update(UserID => 'U-1')->{status}, 200, 'a user channel TokenUpdate');
    Test::More::is(redis('LLEN', "mdm:q:{$main::MAC}:U-1"), 0, 'nothing for the user channel');
    authenticate();
    Test::More::is_deeply(queue(), [], 'Authenticate clears the queue');
    token_update(awaiting => 1);
    my $second = queue();
    Test::More::is(scalar @$second, 5, 'the new enrollment gets it again');
    Test::More::ok(!(grep { my $u = $_; grep { $_ eq $u } @$first } @$second), 'with new UUIDs');
    1;
}



=== TEST 3: precedence: serials, then the DEP profile, then all; a deleted blueprint runs no more; no blueprint, nothing queued
--- redis_setup
FLUSHALL
--- request
GET /v1/blueprints
--- error_code: 200
--- json eval
sub {
    my %one = (commands => [ { request_type => 'DeviceInformation' } ]);
    Test::More::is(put_bp('everyone', { %one, applies_to => { all => JSON::PP::true } })->{status}, 201, 'all');
    Test::More::is(put_bp('dep-a', { commands => [ { request_type => 'SecurityInfo' } ],
        applies_to => { dep_profile_uuid => 'PROF-A' } })->{status}, 201, 'dep');
    Test::More::is(put_bp('by-serial', { commands => [ { request_type => 'UserList' } ],
        applies_to => { serials => [ 'OTHER', $main::SERIAL ] } })->{status}, 201, 'serials');
    redis('HSET', 'mdm:dep:profiles', $main::SERIAL, 'PROF-A');
    my $run = sub { authenticate(); token_update(); return types() };
    Test::More::is_deeply($run->(), [ 'UserList' ], 'serial first');
    api('DELETE', '/v1/blueprints/by-serial');
    Test::More::is_deeply($run->(), [ 'SecurityInfo' ], 'then the DEP profile');
    redis('HSET', 'mdm:dep:profiles', $main::SERIAL, 'PROF-OTHER');
    Test::More::is_deeply($run->(), [ 'DeviceInformation' ], 'then all');
    api('DELETE', '/v1/blueprints/everyone');
    Test::More::is_deeply($run->(), [], 'none: nothing');
    Test::More::is(redis('HGET', "mdm:enr:{$main::MAC}", 'blueprint'), undef, 'no mark');
    1;
}



=== TEST 4: GET lists and shows the JSON as given; a PUT replaces; DELETE; a serial, DEP profile or "all" belongs to one blueprint (409)
--- redis_setup
FLUSHALL
--- request
GET /v1/blueprints
--- error_code: 200
--- json eval
sub {
    my ($j) = @_;
    Test::More::is_deeply($j, { blueprints => [] }, 'none yet');
    put_bp('bootstrap', \%main::BOOT);
    my $zero = { commands => [], device_configured => JSON::PP::true,
                 applies_to => { serials => [ 'S1', 'S2' ] } };
    Test::More::is(put_bp('release-only', $zero)->{status}, 201, 'no commands, just DeviceConfigured');
    my $g = api('GET', '/v1/blueprints/release-only');
    Test::More::is($main::JS->encode($g->{json}{blueprint}), $main::JS->encode($zero), 'the JSON as given');
    Test::More::like($g->{body}, qr/"commands":\[\]/, 'an empty list stays a list');
    my $l = api('GET', '/v1/blueprints');
    Test::More::is_deeply([ map { [ $_->{name}, $_->{commands}, $_->{applies} ] } @{ $l->{json}{blueprints} } ],
        [ [ 'bootstrap', 4, 'all' ], [ 'release-only', 0, 'serials' ] ], 'listed');
    refused('other', { commands => [], applies_to => { all => JSON::PP::true } }, 409,
            qr/blueprint bootstrap applies to all devices already/);
    refused('other', { commands => [], applies_to => { serials => [ 'S9', 'S2' ] } }, 409,
            qr/blueprint release-only applies to S2 already/);
    my $r = put_bp('release-only', { commands => [], applies_to => { serials => [ 'S2', 'S3' ] } });
    Test::More::is($r->{status}, 200, 'replaced');
    Test::More::is_deeply([ sort keys %{ { @{ redis('HGETALL', 'mdm:bpx:serials') } } } ], [ 'S2', 'S3' ],
                          'the serial index follows');
    Test::More::is(api('DELETE', '/v1/blueprints/release-only')->{status}, 200, 'deleted');
    Test::More::is(api('DELETE', '/v1/blueprints/release-only')->{status}, 404, 'gone');
    Test::More::is(api('GET', '/v1/blueprints/release-only')->{status}, 404, 'GET: 404');
    Test::More::is(redis('HLEN', 'mdm:bpx:serials'), 0, 'unindexed');
    Test::More::is(put_bp('other', { commands => [], applies_to => { serials => [ 'S2' ] } })->{status}, 201,
                   'S2 is free again');
    1;
}



=== TEST 5: bad blueprints: 400 and one log line each, naming the command at fault; nothing stored
--- redis_setup
FLUSHALL
--- request
GET /v1/blueprints
--- error_code: 200
--- json eval
sub {
    my %ok = (applies_to => { all => JSON::PP::true });
    refused('bad!name', { commands => [], %ok }, 400, qr/blueprint name/);
    refused('x' x 65, { commands => [], %ok }, 400, qr/blueprint name/);
    refused('b', '{"commands": [', 400, qr/not JSON/);
    refused('b', { commands => [], %ok, extra => 1 }, 400, qr/commands, device_configured and applies_to only/);
    refused('b', { %ok }, 400, qr/commands is an array/);
    refused('b', { commands => [ ({ request_type => 'UserList' }) x 101 ], %ok }, 400, qr/at most 100/);
    refused('b', { commands => [], %ok, device_configured => 'yes' }, 400, qr/device_configured/);
    refused('b', { commands => [] }, 400, qr/applies_to is/);
    refused('b', { commands => [], applies_to => { all => JSON::PP::false } }, 400, qr/applies_to is/);
    refused('b', { commands => [], applies_to => { all => JSON::PP::true, serials => [ 'A' ] } }, 400, qr/applies_to is/);
    refused('b', { commands => [], applies_to => { serials => [] } }, 400, qr/serials is/);
    refused('b', { commands => [], applies_to => { serials => [ 'a b' ] } }, 400, qr/serial number/);
    refused('b', { commands => [], applies_to => { dep_profile_uuid => 5 } }, 400, qr/dep_profile_uuid/);
    refused('b', { commands => [ { request_type => 'UserList' }, { request_type => 'DeviceLock', pin => 1 } ], %ok },
            400, qr/^commands\[1\] pin of DeviceLock is a string/);
    refused('b', { commands => [ { request_type => 'UserList', command_uuid => 'X' } ], %ok },
            400, qr/commands\[0\] has a command_uuid/);
    refused('b', { commands => [ { request_type => 'ClearPasscode' } ], %ok },
            400, qr/commands\[0\] is a ClearPasscode without unlock_token/);
    refused('b', { commands => [ 'x' ], %ok }, 400, qr/commands\[0\] is not a JSON object/);
    refused('b', { commands => [ { plist => '%%%' } ], %ok }, 400, qr/commands\[0\] plist is not base64/);
    refused('b', { commands => [ { plist => MIME::Base64::encode_base64('<plist><dict/></plist>', '') } ], %ok },
            400, qr/commands\[0\] plist is not a command plist/);
    refused('b', { commands => [ { plist => $main::PROFILE, request_type => 'UserList' } ], %ok },
            400, qr/commands\[0\] is \{"plist"/);
    Test::More::is(redis('DBSIZE'), 0, 'nothing stored');
    my $r = api('POST', '/v1/blueprints/b', '{}');
    Test::More::is($r->{status}, 405, 'POST: 405');
    $r = api('DELETE', '/v1/blueprints');
    Test::More::is($r->{status}, 405, 'DELETE without a name: 405');
    1;
}
