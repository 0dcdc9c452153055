# Typed command templates (issue 12, contract T1): GET /v1/templates and
# POST /v1/commands/ID[,ID...].
#
# Every template's plists are checked against Apple's YAML schema, read
# from apple-device-management/mdm/commands (t/MDMSchema.pm): one plist with
# every key the template has (one per alternative of a one_of), one with
# only what it needs. Then every template's errors: an unknown key, each
# key with a wrong type (and each array with a wrong element), each
# enumerated key with a value outside it, each required key missing, the
# one_of/any_of/needs rules: each a 400 with exactly one log line.

use Test::Nginx::Socket 'no_plan';
use t::MDM;
use t::MDMApi;
use t::MDMSchema;

use JSON::PP ();
use MIME::Base64 qw(encode_base64 decode_base64);

no_shuffle();
api_defaults('tpl-key');

our $JS = JSON::PP->new->canonical;

# what issue 12 lists
our @ISSUE = qw(DeviceInformation SecurityInfo ProfileList
    InstalledApplicationList ManagedApplicationList CertificateList
    AvailableOSUpdates RestartDevice ShutDownDevice DeviceLock EraseDevice
    ClearPasscode InstallProfile RemoveProfile InstallApplication
    InstallEnterpriseApplication RemoveApplication ScheduleOSUpdate Settings
    DeviceConfigured EnableLostMode DisableLostMode PlayLostModeSound
    ActivationLockBypassCode DeclarativeManagement UserList LogOutUser
    DeleteUser SetFirmwarePassword SetRecoveryLock);

our $B64 = encode_base64("sample data \x00\x01\xff", '');

# values a generic sample cannot be (dictionaries whose keys Apple fixes)
our %SAMPLE = (
    queries => [ 'DeviceName', 'SerialNumber', 'OSVersion' ],
    items => [ 'Name', 'Identifier' ],
    settings => [ { Item => 'Bluetooth', Enabled => JSON::PP::true } ],
    updates => [ { ProductKey => 'macOS-1', InstallAction => 'InstallASAP' } ],
    manifest => { items => [ { assets => [ { kind => 'software-package',
                                             url => 'https://x.test/p.pkg' } ] } ] },
    configuration => { ServerURL => 'https://x.test', Level => 3 },
    attributes => { Removable => JSON::PP::false, VPNUUID => 'V-1' },
    organization_info => { OrganizationName => 'Example' },
    mdm_options => { BootstrapTokenAllowed => JSON::PP::true },
);

sub sample {
    my ($k) = @_;
    return $SAMPLE{ $k->{name} } if exists $SAMPLE{ $k->{name} };
    return $k->{enum}[-1] if $k->{enum};
    my $t = $k->{type};
    return "sample-$k->{name}" if $t eq 'string';
    return 7 if $t eq 'integer';
    return JSON::PP::true if $t eq 'boolean';
    return $B64 if $t eq 'data';
    return { Key => 'value' } if $t eq 'dict';
    return [ $k->{items} eq 'data' ? $B64 : "sample-item" ] if $t eq 'array';
    die "no sample for $k->{name} ($t)";
}

sub wrong {
    my ($k) = @_;
    my $t = $k->{type};
    return 123 if $t eq 'string';
    return 'x' if $t eq 'integer';
    return 'yes' if $t eq 'boolean';
    return '%%%not base64%%%' if $t eq 'data';
    return [ 1 ] if $t eq 'dict';
    return { a => 1 } if $t eq 'array';
    die;
}

sub words { return $_[0] ? split(' ', $_[0]) : () }

# the full examples of a template: every key, one per one_of alternative
sub full_examples {
    my ($t) = @_;
    my %all = map { $_->{name} => sample($_) } @{ $t->{keys} };
    my @one = words($t->{one_of});
    return ({ %all }) unless @one;
    return map {
        my $keep = $_;
        my %e = %all;
        delete $e{$_} for grep { $_ ne $keep } @one;
        \%e;
    } @one;
}

# only what it needs: required keys, the first alternative, one setting
sub minimal_example {
    my ($t) = @_;
    my %e;
    for my $k (@{ $t->{keys} }) {
        $e{ $k->{name} } = sample($k) if $k->{required};
    }
    for my $w ((words($t->{one_of}))[0], (words($t->{any_of}))[0]) {
        next unless defined $w;
        my ($k) = grep { $_->{name} eq $w } @{ $t->{keys} };
        $e{$w} = sample($k);
    }
    if ($t->{request_type} eq 'Settings') { $e{device_name} = 'Kiosk 1' }
    return \%e;
}

sub stored_plist {
    my ($uuid) = @_;
    return plist_parse(redis('HGET', "mdm:cmd:$uuid", 'plist'));
}

sub post {
    my ($ids, $body, $q) = @_;
    return api('POST', "/v1/commands/$ids" . ($q // '?nopush=1'),
               ref $body ? $JS->encode($body) : $body);
}

sub log_lines {
    my $f = $Test::Nginx::Socket::ErrLogFile;
    open my $fh, '<', $f or return 0;
    my $n = grep { /\[(?:info|notice|warn|error|crit|alert)\].*mdm:/ } <$fh>;
    return $n;
}

# a 400 and exactly one log line
sub refused {
    my ($ids, $body, $name, $like) = @_;
    my $before = log_lines();
    my $r = post($ids, $body);
    Test::More::is($r->{status}, 400, "$name: 400")
        or Test::More::diag($r->{body});
    Test::More::like($r->{json}{error} // '', $like, "$name: says why")
        if $like;
    Test::More::is(log_lines() - $before, 1, "$name: one log line");
}

# the plist value at a T1 plist_key path of Command
sub at_path {
    my ($cmd, $path) = @_;
    if ($path =~ /^(\w+)\[(\w*)\]\.(\w+)\z/) {
        my ($arr, $item, $key) = ($1, $2, $3);
        my $a = $cmd->{v}{$arr} or return undef;
        for my $e (reverse @{ $a->{v} }) {
            next if $item ne '' && ($e->{v}{Item}{v} // '') ne $item;
            return $e->{v}{$key} if $e->{v}{$key};
        }
        return undef;
    }
    if ($path =~ /^(\w+)\.(\w+)\z/) {
        my $d = $cmd->{v}{$1} or return undef;
        return $d->{v}{$2};
    }
    return $cmd->{v}{$path};
}

sub plain {
    my ($n) = @_;
    return [ map { plain($_) } @{ $n->{v} } ] if $n->{t} eq 'array';
    return { map { $_ => plain($n->{v}{$_}) } keys %{ $n->{v} } }
        if $n->{t} eq 'dictionary';
    return $n->{v} ? JSON::PP::true : JSON::PP::false if $n->{t} eq 'boolean';
    return encode_base64($n->{v}, '') if $n->{t} eq 'data';
    return $n->{v} + 0 if $n->{t} eq 'integer' || $n->{t} eq 'real';
    return $n->{v};
}

sub jnorm { return $JS->encode([ $_[0] ]) }

{
    no strict 'refs';
    *{"Test::Base::Filter::$_"} = \&{"main::$_"}
        for qw(full_examples minimal_example stored_plist post refused
               at_path plain jnorm sample wrong words log_lines);
    *{"Test::Base::Filter::$_"} = \&{"t::MDMSchema::$_"}
        for qw(plist_parse schema_check schema_file);
}

our @SETUP = (
    [ "FLUSHALL" ],
    [ "HSET", "mdm:enr:{T-1}", "type", "Device", "enabled", "1",
      "unlock_token", encode_base64("the-unlock-token", '') ],
    [ "HSET", "mdm:enr:{T-2}", "type", "Device", "enabled", "1" ],
    [ "HSET", "mdm:enr:{T-2}:U-1", "type", "User", "enabled", "1" ],
);

run_tests();

__DATA__

=== TEST 1: GET /v1/templates is contract T1 and lists every request type of the issue
--- redis_setup eval
\@main::SETUP
--- request
GET /v1/templates
--- error_code: 200
--- json eval
sub {
    my ($j) = @_;
    my %by = map { $_->{request_type} => $_ } @{ $j->{templates} };
    Test::More::ok($by{$_}, "template $_") for @main::ISSUE;
    for my $t (@{ $j->{templates} }) {
        Test::More::ok(schema_file($t->{request_type}),
                       "$t->{request_type} has an Apple schema");
        for my $k (@{ $t->{keys} }) {
            my $id = "$t->{request_type}.$k->{name}";
            Test::More::like($k->{name}, qr/^[a-z][a-z0-9_]*\z/, "$id: snake_case");
            Test::More::like($k->{type}, qr/^(?:string|integer|boolean|real|data|date|array|dict)\z/, "$id: a T1 type");
            Test::More::ok(JSON::PP::is_bool($k->{required}), "$id: required is a boolean");
            Test::More::ok(exists $k->{default} && length $k->{doc} && length $k->{plist_key},
                           "$id: default, doc and plist_key");
            Test::More::ok($k->{items}, "$id: items") if $k->{type} eq 'array';
        }
    }
    my ($lock) = $by{DeviceLock};
    Test::More::is_deeply([ map { [ $_->{name}, $_->{plist_key}, $_->{type} ] } @{ $lock->{keys} } ],
        [ [ 'pin', 'PIN', 'string' ], [ 'message', 'Message', 'string' ],
          [ 'phone_number', 'PhoneNumber', 'string' ] ], 'DeviceLock as T1 shows it');
    1;
}



=== TEST 2: every template, with every key and with only what it needs, builds a plist that fits Apple's schema, each key where its plist_key says
--- redis_setup eval
\@main::SETUP
--- request
GET /v1/templates
--- error_code: 200
--- json eval
sub {
    my ($j) = @_;
    my $n = 0;
    for my $t (@{ $j->{templates} }) {
        my $rt = $t->{request_type};
        my @ex = (full_examples($t), minimal_example($t));
        for my $i (0 .. $#ex) {
            my $name = "$rt example " . ($i == $#ex ? 'minimal' : "full $i");
            my $r = post('T-1', { request_type => $rt, %{ $ex[$i] } });
            Test::More::is($r->{status}, 200, "$name: 200") or do {
                Test::More::diag($r->{body}); next };
            my $p = stored_plist($r->{json}{command_uuid});
            my @err = schema_check($p);
            Test::More::is_deeply(\@err, [], "$name: fits $rt\'s schema")
                or Test::More::diag(CORE::join "\n", @err);
            $n++;
            my $cmd = $p->{v}{Command};
            Test::More::is($cmd->{v}{RequestType}{v}, $rt, "$name: RequestType");
            Test::More::is($p->{v}{CommandUUID}{v}, $r->{json}{command_uuid},
                           "$name: CommandUUID");
            for my $k (@{ $t->{keys} }) {
                my $given = exists $ex[$i]{ $k->{name} } ? $ex[$i]{ $k->{name} }
                          : $k->{default};
                next unless defined $given;
                my $v = at_path($cmd, $k->{plist_key});
                next if $k->{plist_key} !~ /[\[.]/ && $k->{type} eq 'array'
                        && $k->{plist_key} =~ /^(?:Settings|Updates)\z/
                        && do {
                            # whole elements come first
                            my @got = @{ plain($cmd->{v}{ $k->{plist_key} }) };
                            Test::More::is(jnorm([ @got[0 .. $#$given] ]), jnorm($given),
                                           "$name: $k->{name} leads $k->{plist_key}");
                            1 };
                Test::More::ok($v, "$name: $k->{name} at $k->{plist_key}") or next;
                Test::More::is(jnorm(plain($v)), jnorm($given),
                               "$name: $k->{name} has the value given");
            }
        }
    }
    Test::More::cmp_ok($n, '>=', 62, 'plists checked');
    1;
}



=== TEST 3: every template's errors: unknown key, wrong types, bad elements, values outside an enum, missing required keys, one_of / any_of / needs: each 400 and one log line
--- redis_setup eval
\@main::SETUP
--- request
GET /v1/templates
--- error_code: 200
--- json eval
sub {
    my ($j) = @_;
    for my $t (@{ $j->{templates} }) {
        my $rt = $t->{request_type};
        my ($base) = full_examples($t);
        refused('T-1', { request_type => $rt, %$base, no_such_key => 1 },
                "$rt unknown key", qr/unknown key "no_such_key" for $rt/);
        for my $k (@{ $t->{keys} }) {
            my $n = "$rt.$k->{name}";
            refused('T-1', { request_type => $rt, %$base, $k->{name} => wrong($k) },
                    "$n wrong type", qr/\Q$k->{name}\E of $rt is/);
            refused('T-1', { request_type => $rt, %$base, $k->{name} => undef },
                    "$n null", qr/\Q$k->{name}\E of $rt is/);
            if ($k->{type} eq 'array') {
                my $bad = $k->{items} eq 'string' ? [ 'ok', 5 ]
                        : $k->{items} eq 'dict' ? [ 'x' ] : [ '%%' ];
                refused('T-1', { request_type => $rt, %$base, $k->{name} => $bad },
                        "$n bad element", qr/\Q$k->{name}\E of $rt/);
            }
            if ($k->{enum}) {
                my $out = $k->{type} eq 'integer' ? 99 : 'NotAValue';
                refused('T-1', { request_type => $rt, %$base, $k->{name} => $out },
                        "$n outside its enum", qr/is one of/);
            }
            if ($k->{required}) {
                my %e = %$base;
                delete $e{ $k->{name} };
                refused('T-1', { request_type => $rt, %e }, "$n missing",
                        qr/$rt needs "\Q$k->{name}\E"/);
            }
            if ($k->{needs}) {
                my %e = %$base;
                delete $e{ $k->{needs} };
                refused('T-1', { request_type => $rt, %e }, "$n without $k->{needs}",
                        qr/needs \Q$k->{needs}\E/);
            }
        }
        if (my @one = words($t->{one_of})) {
            my %none = %$base;
            delete @none{@one};
            refused('T-1', { request_type => $rt, %none }, "$rt none of one_of",
                    qr/exactly one of/);
            my %two = (%$base, map { my $w = $_; ($w => sample((grep { $_->{name} eq $w } @{ $t->{keys} })[0])) } @one[0, 1]);
            refused('T-1', { request_type => $rt, %two }, "$rt two of one_of",
                    qr/exactly one of/);
        }
        if (my @any = words($t->{any_of})) {
            my %none = %$base;
            delete @none{@any};
            refused('T-1', { request_type => $rt, %none }, "$rt none of any_of",
                    qr/at least one of/);
        }
    }
    refused('T-1', { request_type => 'Settings' }, 'Settings without a setting',
            qr/Settings needs at least one element/);
    refused('T-1', { request_type => 'NoSuchCommand' }, 'unknown request_type',
            qr/unknown request_type "NoSuchCommand"/);
    refused('T-1', { pin => '123456' }, 'no request_type', qr/request_type/);
    refused('T-1', '[1,2]', 'a JSON array', qr/request_type/);
    refused('T-1', '{"request_type": "DeviceLock",', 'not JSON', qr/not JSON/);
    refused('T-1', '{"request_type":"DeviceLock","pin":"1","pin":"2"}',
            'a duplicate key', qr/not JSON/);
    refused('T-1', '', 'no body', qr/no JSON command/);
    refused('T-1', { request_type => 'InstallApplication', itunes_store_id => -5 },
            'a negative integer', qr/itunes_store_id of InstallApplication is a non-negative integer/);
    refused('T-1', { request_type => 'InstallApplication', itunes_store_id => 1,
                     configuration => { a => undef } },
            'a null inside a dictionary', qr/null/);
    my $deep = {}; my $d = $deep; $d = $d->{a} = {} for 1 .. 20;
    refused('T-1', { request_type => 'InstallApplication', itunes_store_id => 1,
                     configuration => $deep }, 'a dictionary nested too deep', qr/deeper/);
    refused('T-1', { request_type => 'InstallProfile', payload => '' },
            'an empty payload', qr/non-empty base64/);
    refused('T-1', { request_type => 'DeviceLock', command_uuid => 'a b' },
            'a bad command_uuid', qr/command_uuid/);
    refused('T-1', { request_type => 'DeviceLock', command_uuid => 5 },
            'a command_uuid not a string', qr/command_uuid/);
    refused('T-1,', { request_type => 'DeviceLock' }, 'a bad id list', qr/id list/);
    Test::More::is(redis('DBSIZE'), 3, 'nothing was queued');
    1;
}



=== TEST 4: answered exactly as PUT /v1/enqueue: same JSON, 207 for some unknown, 400 for none; priority, expires, nopush as enqueue takes them
--- redis_setup eval
\@main::SETUP
--- request
GET /v1/templates/DeviceLock
--- error_code: 200
--- json eval
sub {
    my ($j) = @_;
    Test::More::is($j->{request_type}, 'DeviceLock', 'one template');
    my $r = post('T-1,T-2,NOBODY', { request_type => 'DeviceLock', pin => '123456',
                                    command_uuid => 'TPL-A' }, '');
    my $plist = redis('HGET', 'mdm:cmd:TPL-A', 'plist');
    redis('DEL', 'mdm:cmd:TPL-A', 'mdm:cmd:TPL-A:targets', 'mdm:q:{T-1}', 'mdm:q:{T-2}',
          'mdm:push', 'mdm:push:pending');
    my $e = api('PUT', '/v1/enqueue/T-1,T-2,NOBODY', $plist);
    Test::More::is($r->{status}, 207, 'some unknown: 207');
    Test::More::is($e->{status}, $r->{status}, 'enqueue answers the same status');
    Test::More::is($main::JS->encode($r->{json}), $main::JS->encode($e->{json}), 'and the same JSON');
    Test::More::is_deeply($r->{json}{status}{'T-1'}, { push_result => 'queued' }, 'pushed');
    Test::More::is($r->{json}{request_type}, 'DeviceLock', 'request_type');

    $r = post('NOBODY', { request_type => 'DeviceLock' }, '');
    Test::More::is($r->{status}, 400, 'no known enrollment: 400');

    redis('DEL', 'mdm:push', 'mdm:push:pending');
    $r = post('T-1,T-2:U-1', { request_type => 'ProfileList', managed_only => JSON::PP::true },
              '?priority=1&expires=600&nopush=1&max_deliveries=3');
    Test::More::is($r->{status}, 200, 'a device and a user channel');
    my $u = $r->{json}{command_uuid};
    Test::More::like($u, qr/^[0-9A-F]{8}-[0-9A-F]{4}-4[0-9A-F]{3}-[89AB][0-9A-F]{3}-[0-9A-F]{12}\z/,
                     'a v4 UUID made up');
    Test::More::ok($r->{json}{no_push}, 'no_push');
    Test::More::is_deeply(redis('LRANGE', 'mdm:qp:{T-1}', 0, -1), [ $u ], 'priority lane');
    Test::More::is_deeply(redis('LRANGE', 'mdm:qp:{T-2}:U-1', 0, -1), [ $u ], 'user channel');
    Test::More::is(redis('HGET', "mdm:cmd:$u", 'max_deliveries'), '3', 'max_deliveries');
    Test::More::ok(redis('HGET', "mdm:cmd:$u", 'expires_at') > time * 1000, 'expires_at');
    Test::More::is(redis('LLEN', 'mdm:push'), 0, 'nothing pushed');

    $r = post('T-1', { request_type => 'DeviceLock', command_uuid => 'TPL-A' }, '?priority=2');
    Test::More::is($r->{status}, 400, 'a bad option: 400');
    $r = post('T-1', { request_type => 'RestartDevice', command_uuid => 'TPL-B' });
    $r = post('T-1', { request_type => 'RestartDevice', command_uuid => 'TPL-B' });
    Test::More::is($r->{status}, 409, 'a command_uuid used twice: 409, as enqueue');
    1;
}



=== TEST 5: ClearPasscode takes the device's stored UnlockToken; refused for several ids, a user channel, or a device that sent none
--- redis_setup eval
\@main::SETUP
--- request eval
"POST /v1/commands/T-1?nopush=1\n" . '{"request_type": "ClearPasscode"}'
--- error_code: 200
--- json eval
sub {
    my ($j) = @_;
    my $p = stored_plist($j->{command_uuid});
    Test::More::is($p->{v}{Command}{v}{UnlockToken}{t}, 'data', 'UnlockToken is data');
    Test::More::is($p->{v}{Command}{v}{UnlockToken}{v}, 'the-unlock-token', 'the stored token');
    Test::More::is_deeply([ schema_check($p) ], [], 'fits the schema');
    refused('T-1,T-2', { request_type => 'ClearPasscode' }, 'two ids', qr/one device id/);
    refused('T-2:U-1', { request_type => 'ClearPasscode' }, 'a user channel', qr/one device id/);
    my $r = post('T-2', { request_type => 'ClearPasscode' });
    Test::More::is($r->{status}, 409, 'no UnlockToken: 409');
    Test::More::like($r->{json}{error}, qr/no UnlockToken/, 'says so');
    $r = post('NOBODY', { request_type => 'ClearPasscode' });
    Test::More::is($r->{status}, 404, 'unknown: 404');
    $r = post('T-1,T-2', { request_type => 'ClearPasscode', unlock_token => MIME::Base64::encode_base64('given', '') });
    Test::More::is($r->{status}, 200, 'with unlock_token: any ids');
    Test::More::is(stored_plist($r->{json}{command_uuid})->{v}{Command}{v}{UnlockToken}{v},
                   'given', 'the token given');
    1;
}



=== TEST 6: what the templates make: the default queries, Settings items after whole ones, one ScheduleOSUpdate update, ReturnToService
--- redis_setup eval
\@main::SETUP
--- request eval
"POST /v1/commands/T-1?nopush=1\n" . '{"request_type": "DeviceInformation"}'
--- error_code: 200
--- json eval
sub {
    my ($j) = @_;
    my $c = stored_plist($j->{command_uuid})->{v}{Command};
    Test::More::is_deeply(plain($c->{v}{Queries}),
        [ qw(DeviceName OSVersion BuildVersion ModelName Model ProductName SerialNumber
             DeviceCapacity AvailableDeviceCapacity BatteryLevel UDID IsSupervised
             IsActivationLockEnabled WiFiMAC IsMDMLostModeEnabled) ], 'default queries');

    my $r = post('T-1', { request_type => 'Settings', device_name => 'Kiosk',
        bluetooth => JSON::PP::false, time_zone => 'Europe/Berlin',
        settings => [ { Item => 'DataRoaming', Enabled => JSON::PP::true } ] });
    $c = stored_plist($r->{json}{command_uuid})->{v}{Command};
    my @items = map { $_->{v}{Item}{v} } @{ $c->{v}{Settings}{v} };
    Test::More::is($items[0], 'DataRoaming', 'whole settings first');
    Test::More::is_deeply([ sort @items ], [ sort qw(DataRoaming DeviceName Bluetooth TimeZone) ],
                          'one item per setting');

    $r = post('T-1', { request_type => 'ScheduleOSUpdate', product_version => '15.2' });
    $c = stored_plist($r->{json}{command_uuid})->{v}{Command};
    Test::More::is_deeply(plain($c->{v}{Updates}),
        [ { InstallAction => 'Default', ProductVersion => '15.2' } ], 'one update');
    $r = post('T-1', { request_type => 'ScheduleOSUpdate',
                       updates => [ { ProductKey => 'K', InstallAction => 'InstallASAP' } ] });
    $c = stored_plist($r->{json}{command_uuid})->{v}{Command};
    Test::More::is_deeply(plain($c->{v}{Updates}),
        [ { ProductKey => 'K', InstallAction => 'InstallASAP' } ],
        'whole updates alone: no default one added');

    $r = post('T-1', { request_type => 'EraseDevice', return_to_service => JSON::PP::true,
                       wifi_profile_data => MIME::Base64::encode_base64("wifi\n" x 40) });
    $c = stored_plist($r->{json}{command_uuid})->{v}{Command};
    Test::More::is(plain($c->{v}{ReturnToService})->{Enabled}, JSON::PP::true, 'ReturnToService.Enabled');
    Test::More::is($c->{v}{ReturnToService}{v}{WiFiProfileData}{v}, "wifi\n" x 40,
                   'base64 with line breaks, as base64(1) writes it');

    # a body larger than nginx keeps in memory: read from its temporary file
    my $big = join '', map { chr(($_ * 7919) % 256) } 1 .. 300000;
    $r = post('T-1', { request_type => 'InstallProfile',
                       payload => MIME::Base64::encode_base64($big) });
    Test::More::is($r->{status}, 200, 'a 300 KB profile');
    Test::More::ok(stored_plist($r->{json}{command_uuid})->{v}{Command}{v}{Payload}{v} eq $big,
                   'stored byte for byte');
    1;
}



=== TEST 7: methods: PUT /v1/commands/ID is 405; POST /v1/templates 405; an unknown template 404; GET /v1/commands/UUID still works
--- redis_setup eval
\@main::SETUP
--- request eval
[ "PUT /v1/commands/T-1\n{}", "POST /v1/templates\n{}", "GET /v1/templates/Nope",
  "POST /v1/commands/T-1?nopush=1\n" . '{"request_type":"UserList","command_uuid":"TPL-G"}',
  "GET /v1/commands/TPL-G" ]
--- error_code eval
[ 405, 405, 404, 200, 200 ]
--- json eval
[ undef, undef, undef, { command_uuid => "TPL-G", request_type => "UserList" },
  { command_uuid => "TPL-G", request_type => "UserList" } ]
