# mdmctl against a real nginx + Redis: help and usage errors (exit 2),
# configuration precedence, tables and --json for devices, device, queue,
# result, clear, push, certs, events, send (raw plists and templates from
# GET /v1/templates, contract T1), the exit codes (0 ok, 1 partial, 2
# usage, 3 server error or no answer, 4 refused), and one run of several
# commands under valgrind.

use Test::Nginx::Socket 'no_plan';
use t::MDM;
use t::MDMApi;
use t::MDMServers;
use t::MDMCtl;

use MIME::Base64 qw(encode_base64);
use Test::More;

no_shuffle();
api_defaults('ctl-key');

our @ENR = (
    [ "FLUSHALL" ],
    [ "HSET", "mdm:enr:{DEV-1}", "type", "Device", "enabled", "1", "serial_number", "C02AAA111",
      "model", "MacBookPro18,1", "os_version", "15.2", "device_name", "Kiosk 1",
      "last_seen", "1764693000000", "token", "t", "unlock_token", "u" ],
    [ "HSET", "mdm:enr:{DEV-2}", "type", "Device", "enabled", "1", "serial_number", "C02BBB222",
      "model", "iPhone15,2", "os_version", "18.1", "device_name", "Phone\tof\nBob", "token", "t" ],
    [ "HSET", "mdm:enr:{DEV-1}:USER-1", "type", "User", "enabled", "1", "parent", "DEV-1" ],
    [ "SADD", "mdm:users:{DEV-1}", ":USER-1" ],
);

sub plist_cmd {
    my ($type, $uuid) = @_;
    return qq{<?xml version="1.0" encoding="UTF-8"?>\n<plist version="1.0"><dict>}
         . qq{<key>Command</key><dict><key>RequestType</key><string>$type</string></dict>}
         . ($uuid ? "<key>CommandUUID</key><string>$uuid</string>" : '')
         . "</dict></plist>\n";
}

sub file_with {
    my ($name, $data) = @_;
    my $f = "$::CtlHome/$name";
    t::MDM::_spew($f, $data);
    return $f;
}

sub qlen { redis('LLEN', "mdm:q:{$_[0]}") + redis('LLEN', "mdm:qp:{$_[0]}") }

# --- TEST 1
sub t_help {
    my ($rc, $out, $err) = ctl_raw({}, '--help');
    is($rc, 0, '--help: exit 0');
    for my $c ('devices', 'device ID', 'queue ID', 'result UUID', 'clear ID', 'push ID',
               'send ID', 'templates', 'certs', 'events', 'events replay', 'blueprint put',
               'blueprint list', 'blueprint show', 'blueprint delete', 'pushcert request',
               'pushcert vendor-sign', 'pushcert mdmcert-download', 'pushcert decrypt',
               'pushcert upload', 'pushcert show', 'version') {
        like($out, qr/^  mdmctl \Q$c\E/m, "--help lists $c");
    }
    for my $o (qw(--server --api-key-file --config --json --timeout --filter --plist --priority
                  --expires --nopush --max-deliveries --uuid --email --org --vendor-cert --vendor-key
                  --apple-intermediate --apple-root --url --api-key --force --key --count)) {
        like($out, qr/^    \Q$o\E\b/m, "--help lists $o");
    }
    like($out, qr/exit codes: 0 ok, 1 partial .*2 usage, 3 server error.*4 refused/, '--help: exit codes');

    ($rc, $out, $err) = ctl_raw({}, 'send', '--help');
    is($rc, 0, 'send --help: exit 0');
    like($out, qr/^usage: mdmctl send ID\.\.\. TEMPLATE/, 'send --help: usage');
    like($out, qr/--phone-number/, 'send --help: how keys are named');
    ($rc, $out) = ctl_raw({}, 'pushcert', 'upload', '-h');
    is($rc, 0, 'pushcert upload -h: exit 0');
    like($out, qr/^usage: mdmctl pushcert upload CERT/, 'pushcert upload -h: usage');

    my %bad = (
        'no command' => [], 'unknown command' => [ 'frobnicate' ],
        'a group alone' => [ 'pushcert' ], 'unknown option' => [ 'devices', '--bogus' ],
        'unknown global option' => [ '--bogus', 'devices' ], 'a short option' => [ 'devices', '-x' ],
        'missing argument' => [ 'device' ], 'extra argument' => [ 'device', 'A', 'B' ],
        'an option without its value' => [ 'devices', '--limit' ],
        'a flag with a value' => [ 'devices', '--json=1' ],
        'a bad --limit' => [ 'devices', '--limit', '0' ],
        'a bad --timeout' => [ '--timeout', 'soon', 'devices' ],
        'a bad --filter' => [ 'devices', '--filter', 'serial' ],
        'a --filter the server does not have' => [ 'devices', '--filter', 'serail=C02AAA111' ],
        'send without template' => [ 'send', 'DEV-1' ],
        'send --plist with a key' => [ 'send', 'DEV-1', '--plist', '/dev/null', '--pin', '1' ],
        'send --plist, no such file' => [ 'send', 'DEV-1', '--plist', "$::CtlHome/none.plist" ],
        'send --plist, not a plist' => [ 'send', 'DEV-1', '--plist', '/dev/null' ],
        'blueprint put, not JSON' => [ 'blueprint', 'put', 'bp', '/dev/null' ],
        'blueprint, bad name' => [ 'blueprint', 'show', 'a/b' ],
        'send --expires words' => [ 'send', 'DEV-1', '--plist', '/dev/null', '--expires', 'tomorrow' ],
    );
    for my $name (sort keys %bad) {
        ($rc, $out, $err) = ctl(@{ $bad{$name} });
        is($rc, 2, "$name: exit 2");
        like($err, qr/^mdmctl: /, "$name: says why on stderr");
    }
    ($rc, $out, $err) = ctl_raw({}, 'devices');
    is($rc, 2, 'no server configured: exit 2');
    like($err, qr/no server or no API key/, 'no server configured: says so');
}

# --- TEST 2
sub t_config {
    my $good = 'http://127.0.0.1:' . server_port();
    my $down = 'http://127.0.0.1:1';
    my $keyf = ::ctl_key_file();
    my $conf = file_with('config-a', "# a comment\nserver = $down\napi_key_file = $keyf\n");
    my ($rc, $out, $err) = ctl_raw({}, '--config', $conf, 'devices');
    is($rc, 3, 'the config file\'s server (down): exit 3');
    ($rc, $out, $err) = ctl_raw({ MDM_SERVER => $good }, '--config', $conf, 'devices');
    is($rc, 0, 'MDM_SERVER beats the config file') or diag($err);
    ($rc, $out, $err) = ctl_raw({ MDM_SERVER => $down }, '--config', $conf, '--server', $good, 'devices');
    is($rc, 0, '--server beats MDM_SERVER');
    ($rc, $out, $err) = ctl_raw({ MDM_SERVER => $good, MDM_API_KEY => 'wrong' }, '--config', $conf, 'devices');
    is($rc, 4, 'MDM_API_KEY beats the config file (a wrong key: 401, exit 4)');
    like($err, qr/HTTP 401/, 'a wrong key: the server\'s 401');
    ($rc, $out, $err) = ctl_raw({ MDM_SERVER => $good, MDM_API_KEY => 'wrong' }, '--config', $conf,
                                '--api-key-file', $keyf, 'devices');
    is($rc, 0, '--api-key-file beats MDM_API_KEY');

    # the default place: $XDG_CONFIG_HOME/mdmctl/config, api_key inline
    mkdir "$::CtlHome/.config";
    mkdir "$::CtlHome/.config/mdmctl";
    t::MDM::_spew("$::CtlHome/.config/mdmctl/config", "server = $good/\napi_key = $::KEY\njson = yes\n");
    ($rc, $out, $err) = ctl_raw({}, 'devices');
    is($rc, 0, '~/.config/mdmctl/config: exit 0') or diag($err);
    like($out, qr/"enrollments"/, '~/.config/mdmctl/config: json = yes is --json');
    unlink "$::CtlHome/.config/mdmctl/config";

    ($rc, $out, $err) = ctl_raw({}, '--config', file_with('config-b', "sever = x\n"), 'devices');
    is($rc, 2, 'a misspelt setting: exit 2');
    like($err, qr/config-b:1: unknown setting "sever"/, 'a misspelt setting: where');
    ($rc, $out, $err) = ctl_raw({}, '--config', "$::CtlHome/nothing", 'devices');
    is($rc, 2, '--config FILE that is missing: exit 2');
    ($rc, $out, $err) = ctl_raw({}, '--server', $good, '--api-key-file', "$::CtlHome/nothing", 'devices');
    is($rc, 2, '--api-key-file that is missing: exit 2');
}

# --- TEST 3
sub t_devices {
    my ($rc, $out, $err) = ctl('devices');
    is($rc, 0, 'devices: exit 0') or diag($err);
    my @lines = split /\n/, $out;
    like($lines[0], qr/^ID\s+TYPE\s+SERIAL\s+MODEL\s+OS\s+NAME\s+ENABLED\s+LAST SEEN \(UTC\)$/, 'devices: the header');
    is(scalar @lines, 4, 'devices: a line per enrollment');
    like($out, qr/^DEV-1\s+Device\s+C02AAA111\s+MacBookPro18,1\s+15\.2\s+Kiosk 1\s+yes\s+2025-12-02 16:30:00$/m,
         'devices: DEV-1\'s row, last seen in UTC');
    like($out, qr/^DEV-2\s+Device\s+C02BBB222\s+iPhone15,2\s+18\.1\s+Phone of Bob\s+yes\s+-$/m,
         'devices: DEV-2\'s row, the name on one line, no last seen');
    like($out, qr/^DEV-1:USER-1\s+User\s+-/m, 'devices: the user channel');

    ($rc, $out, $err) = ctl('--json', 'devices', '--limit', '1');
    is($rc, 0, 'devices --json --limit 1: exit 0');
    my $j = ctl_json($out);
    is($j->{cursor}, '', 'devices --json: walked to the last page');
    is_deeply([ sort map { $_->{id} } @{ $j->{enrollments} } ], [ 'DEV-1', 'DEV-1:USER-1', 'DEV-2' ],
              'devices --json --limit 1: every enrollment, page by page');
    ($rc, $out) = ctl('devices', '--json', '--max', '1', '--limit', '1');
    is(scalar @{ ctl_json($out)->{enrollments} }, 1, 'devices --max 1: one');
    ($rc, $out) = ctl('devices', '--json', '--filter', 'type=User');
    is_deeply([ map { $_->{id} } @{ ctl_json($out)->{enrollments} } ], [ 'DEV-1:USER-1' ],
              'devices --filter type=User');
    ($rc, $out) = ctl('devices', '--json', '--filter', 'type=Device', '--filter', 'last_seen_after=1764692000000');
    is_deeply([ map { $_->{id} } @{ ctl_json($out)->{enrollments} } ], [ 'DEV-1' ],
              'devices: two --filter');
    ($rc, $out) = ctl('devices', '--json', '--filter', 'serial=C02BBB222');
    is_deeply([ map { $_->{id} } @{ ctl_json($out)->{enrollments} } ], [ 'DEV-2' ],
              'devices --filter serial=');
    ($rc, $out) = ctl('devices', '--json', '--filter', 'model=MacBookPro18,1', '--filter', 'os_version=15.2');
    is_deeply([ map { $_->{id} } @{ ctl_json($out)->{enrollments} } ], [ 'DEV-1' ],
              'devices --filter model= --filter os_version=');
    my %ids = map { ($_->{id} => 1) } @{ ctl_json((ctl('devices', '--json', '--filter',
                                                       'last_seen_before=1764694000000'))[1])->{enrollments} };
    ok($ids{'DEV-1'}, 'devices --filter last_seen_before= after its last check-in: DEV-1');
    %ids = map { ($_->{id} => 1) } @{ ctl_json((ctl('devices', '--json', '--filter',
                                                    'last_seen_before=1764692000000'))[1])->{enrollments} };
    ok(!$ids{'DEV-1'}, 'devices --filter last_seen_before= before it: not DEV-1');
    ($rc, $out, $err) = ctl('devices', '--filter', 'enabled=maybe');
    is($rc, 4, 'devices with a filter the server refuses: exit 4');
    like($err, qr/HTTP 400/, '... with the server\'s error');

    ($rc, $out, $err) = ctl('device', 'DEV-1');
    is($rc, 0, 'device: exit 0');
    like($out, qr/^FIELD\s+VALUE$/m, 'device: a field table');
    like($out, qr/^serial_number\s+C02AAA111$/m, 'device: serial');
    like($out, qr/^last_seen\s+1764693000000 \(2025-12-02 16:30:00 UTC\)$/m, 'device: a time in UTC');
    like($out, qr/^has_unlock_token\s+yes$/m, 'device: a boolean');
    ($rc, $out, $err) = ctl('--json', 'device', 'DEV-1:USER-1');
    is($rc, 0, 'device of a user channel (":" in the ID): exit 0') or diag($err);
    is(ctl_json($out)->{parent}, 'DEV-1', 'device of a user channel: its parent');
    ($rc, $out) = ctl('device', 'DEV-1', '--json');
    is(ctl_json($out)->{serial_number}, 'C02AAA111', 'device --json: the API\'s object');
    ($rc, $out, $err) = ctl('device', 'NOBODY');
    is($rc, 4, 'an unknown device: exit 4');
    like($err, qr/GET \/v1\/enrollments\/NOBODY: HTTP 404: /, 'an unknown device: the server\'s error');
    is($out, '', 'an unknown device: nothing on stdout');
    ($rc, $out, $err) = ctl('device', 'NOBODY', '--json');
    ok(ctl_json($out)->{error}, 'an unknown device --json: the error JSON on stdout');
}

# --- TEST 4
sub t_queue {
    my $pl = file_with('lock.plist', plist_cmd('DeviceLock', 'CMD-Q1'));
    my ($rc, $out, $err) = ctl('send', 'DEV-1', 'DEV-2', '--plist', $pl, '--nopush');
    is($rc, 0, 'send --plist to two: exit 0') or diag($err);
    like($out, qr/^command CMD-Q1 \(DeviceLock\)$/m, 'send: the command');
    like($out, qr/^DEV-1\s+ok$/m, 'send: per ID');
    is(redis('LLEN', 'mdm:push'), 0, '--nopush: no push queued');

    ($rc, $out, $err) = ctl('send', 'DEV-1', 'NOBODY', '--plist', file_with('p2', plist_cmd('ProfileList', 'CMD-Q2')),
                            '--priority', '--expires', '3600');
    is($rc, 1, 'send to a known and an unknown ID: exit 1 (partial)');
    like($out, qr/^NOBODY\s+unknown enrollment$/m, 'partial: says which');
    like($out, qr/^DEV-1\s+queued$/m, 'partial: a push queued for the known one');
    is(redis('HGET', 'mdm:cmd:CMD-Q2', 'priority'), '1', '--priority');
    ok(redis('HGET', 'mdm:cmd:CMD-Q2', 'expires_at'), '--expires');

    ($rc, $out, $err) = ctl('send', 'NOBODY', '--plist', file_with('p3', plist_cmd('ProfileList', 'CMD-Q3')));
    is($rc, 4, 'send to unknown IDs only: exit 4');
    ($rc, $out, $err) = ctl('send', 'DEV-1', '--plist', $pl);
    is($rc, 4, 'a used command UUID: exit 4');
    like($err, qr/409: command UUID CMD-Q1 already exists/, '... the server\'s reason');

    ($rc, $out, $err) = ctl('queue', 'DEV-1', '--limit', '1');
    is($rc, 0, 'queue: exit 0');
    like($out, qr/^COMMAND UUID\s+TYPE\s+DELIVERIES\s+LAST STATUS\s+NOTNOW\s+CREATED \(UTC\)\s+EXPIRES \(UTC\)$/m,
         'queue: the header');
    like($out, qr/^CMD-Q2\s+ProfileList\s+0\s+-\s+0\s+\d{4}-.*\n^CMD-Q1\s+DeviceLock\s+0\s+-\s+0\s+\d{4}-\S+ \S+\s+-$/m,
         'queue: the priority lane first, every page');
    like($out, qr/^2 pending$/m, 'queue: the total');
    ($rc, $out) = ctl('--json', 'queue', 'DEV-1');
    is_deeply([ map { $_->{command_uuid} } @{ ctl_json($out)->{commands} } ], [ 'CMD-Q2', 'CMD-Q1' ], 'queue --json');

    ($rc, $out, $err) = ctl('result', 'CMD-Q1');
    is($rc, 0, 'result: exit 0');
    like($out, qr/^command CMD-Q1: DeviceLock, created \d{4}-.* UTC, 2 target\(s\)$/m, 'result: the command');
    like($out, qr/^DEV-2\s+Queued\s+0\s+0\s+-$/m, 'result: per enrollment');
    ($rc, $out, $err) = ctl('result', 'NOPE');
    is($rc, 4, 'result of an unknown command: exit 4');

    ($rc, $out, $err) = ctl('clear', 'DEV-1', 'CMD-Q2');
    is($rc, 0, 'clear ID UUID: exit 0');
    like($out, qr/^REMOVED\nCMD-Q2\n1 remaining$/m, 'clear ID UUID: what went');
    ($rc, $out, $err) = ctl('clear', 'DEV-1', 'CMD-Q2');
    is($rc, 4, 'clear a command that is not queued: exit 4');
    redis('RPUSH', 'mdm:q:{DEV-1}', map { "X-$_" } 1 .. 1500);
    ($rc, $out, $err) = ctl('--json', 'clear', 'DEV-1');
    is($rc, 0, 'clear ID: exit 0');
    my $j = ctl_json($out);
    is(scalar @{ $j->{removed} }, 1501, 'clear ID: the whole queue, over two calls');
    is($j->{remaining}, 0, 'clear ID: none remaining');
    is(qlen('DEV-1'), 0, 'clear ID: the queue is empty');

    redis('DEL', 'mdm:push', 'mdm:push:pending');
    ($rc, $out, $err) = ctl('push', 'DEV-1', 'DEV-2');
    is($rc, 0, 'push: exit 0');
    like($out, qr/^ID\s+PUSH\n(DEV-\d\s+queued\n){2}$/m, 'push: a table');
    ($rc, $out, $err) = ctl('push', 'DEV-1', 'NOBODY');
    is($rc, 1, 'push to a known and an unknown: exit 1');
    ($rc, $out, $err) = ctl('push', 'NOBODY');
    is($rc, 4, 'push to an unknown: exit 4');
    # more IDs than one URL takes: several calls, one answer
    ($rc, $out, $err) = ctl('--json', 'push', 'DEV-1', map { "NOBODY-$_" } 1 .. 250);
    is($rc, 1, 'push to 251 IDs (three calls): exit 1');
    is(scalar keys %{ ctl_json($out)->{status} }, 251, 'push to 251: every ID answered');
}

# --- TEST 5
sub t_send_templates {
    my ($rc, $out, $err) = ctl('templates');
    is($rc, 0, 'templates: exit 0') or diag($err);
    like($out, qr/^DeviceLock\s+--pin --message --phone-number$/m, 'templates: DeviceLock and its options');
    ($rc, $out, $err) = ctl('templates', 'devicelock');
    is($rc, 0, 'templates NAME (any case): exit 0');
    like($out, qr/^--phone-number\s+PhoneNumber\s+string\s+no\s/m, 'templates NAME: a key');

    ($rc, $out, $err) = ctl('send', 'DEV-1', 'DEV-2', 'DeviceLock', '--pin', '123456',
                            '--message=Call IT', '--phone-number', '+49 30 1234', '--nopush', '--uuid', 'T-LOCK');
    is($rc, 0, 'send DeviceLock: exit 0') or diag($err);
    like($out, qr/^command T-LOCK \(DeviceLock\)$/m, 'send DeviceLock: the command');
    my $pl = redis('HGET', 'mdm:cmd:T-LOCK', 'plist') // '';
    like($pl, qr{<key>PhoneNumber</key>\s*<string>\+49 30 1234</string>}, '--phone-number is PhoneNumber');
    like($pl, qr{<key>PIN</key>\s*<string>123456</string>}, '--pin is PIN, a string');
    like($pl, qr{<key>Message</key>\s*<string>Call IT</string>}, '--message=VALUE');
    is(redis('SCARD', 'mdm:cmd:T-LOCK:targets'), 2, 'queued for both');

    my $prof = file_with('wifi.mobileconfig', "<plist>\x00\xff bytes</plist>");
    ($rc, $out, $err) = ctl('send', 'DEV-1', 'InstallProfile', '--payload-file', $prof, '--uuid', 'T-PROF');
    is($rc, 0, 'send InstallProfile --payload-file: exit 0') or diag($err);
    my $b64 = encode_base64("<plist>\x00\xff bytes</plist>", '');
    like(redis('HGET', 'mdm:cmd:T-PROF', 'plist'), qr{<key>Payload</key>\s*<data>\s*\Q$b64\E\s*</data>},
         '--payload-file: the file\'s bytes as data');

    ($rc, $out, $err) = ctl('send', 'DEV-1', 'DeviceInformation', '--queries', 'SerialNumber,OSVersion',
                            '--uuid', 'T-INFO');
    is($rc, 0, 'DeviceInformation --queries a,b: exit 0') or diag($err);
    like(redis('HGET', 'mdm:cmd:T-INFO', 'plist'),
         qr{<key>Queries</key>\s*<array>\s*<string>SerialNumber</string>\s*<string>OSVersion</string>\s*</array>},
         '--queries a,b: an array');
    ($rc, $out, $err) = ctl('send', 'DEV-1', 'ProfileList', '--managed-only', '--uuid', 'T-PL');
    is($rc, 0, 'a boolean key alone: exit 0') or diag($err);
    like(redis('HGET', 'mdm:cmd:T-PL', 'plist'), qr{<key>ManagedOnly</key>\s*<true/>}, 'a boolean alone is true');
    ($rc, $out, $err) = ctl('send', 'DEV-1', 'Settings', '--mdm-options', '{"BootstrapTokenAllowed": true}',
                            '--uuid', 'T-SET');
    is($rc, 0, 'a dict key as JSON: exit 0') or diag($err);

    # refused before anything is sent: nothing queued, no request
    redis('DEL', 'mdm:push', 'mdm:push:pending');
    my $before = qlen('DEV-1');
    my %bad = (
        'an unknown key' => [ 'DeviceLock', '--pin', '1', '--colour', 'red' ],
        'an unknown template' => [ 'DeviceUnlock' ],
        'a word for a boolean' => [ 'ProfileList', '--managed-only', 'maybe' ],
        'a word for an integer' => [ 'InstallApplication', '--itunes-store-id', 'many' ],
        'a required key missing' => [ 'RemoveProfile' ],
        'a value outside the enum' => [ 'EraseDevice', '--obliteration-behavior', 'Sometimes' ],
        'a key twice' => [ 'DeviceLock', '--pin', '1', '--pin', '2' ],
        'a bad JSON dict' => [ 'Settings', '--mdm-options', '{"a":' ],
        'not base64 for data' => [ 'InstallProfile', '--payload', 'not base64!' ],
        'a data file that is missing' => [ 'InstallProfile', '--payload-file', "$::CtlHome/none" ],
    );
    for my $name (sort keys %bad) {
        ($rc, $out, $err) = ctl('--verbose', 'send', 'DEV-1', @{ $bad{$name} });
        is($rc, 2, "$name: exit 2");
        like($err, qr/^mdmctl: (?!POST).*/m, "$name: says why");
        unlike($err, qr/POST /, "$name: nothing was sent");
    }
    is(qlen('DEV-1'), $before, 'nothing queued');
    is(redis('LLEN', 'mdm:push'), 0, 'nothing pushed');

    # what only the server knows: exactly one of three keys
    ($rc, $out, $err) = ctl('send', 'DEV-1', 'InstallApplication', '--itunes-store-id', '1',
                            '--manifest-url', 'https://example.com/m.plist');
    is($rc, 4, 'a template rule the server checks: exit 4');
    like($err, qr/POST \/v1\/commands\/DEV-1: HTTP 400: /, '... the server\'s reason');
}

# --- TEST 6
sub t_down {
    my ($rc, $out, $err) = ctl_raw({}, '--server', 'http://127.0.0.1:1', '--api-key-file',
                                   ::ctl_key_file(), 'devices');
    is($rc, 3, 'connection refused: exit 3');
    like($err, qr/Could(n't| not) connect/i, 'connection refused: says so');

    redis_stop();
    ($rc, $out, $err) = ctl('devices');
    is($rc, 3, 'Redis down (503): exit 3');
    like($err, qr/HTTP 503/, 'Redis down: the server\'s 503');
    ($rc, $out, $err) = ctl('send', 'DEV-1', 'DeviceLock');
    is($rc, 3, 'Redis down, send: exit 3');
    redis_start();

    # a server that is not the API
    ($rc, $out, $err) = ctl_raw({}, '--server', 'http://127.0.0.1:' . server_port() . '/nothing',
                                '--api-key-file', ::ctl_key_file(), 'devices');
    is($rc, 3, 'not the API (no JSON): exit 3');
    like($err, qr/no JSON object in the answer/, 'not the API: says so');

    # a server that never answers: --timeout
    my $l = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0, Listen => 5) or die $!;
    my $t0 = time;
    ($rc, $out, $err) = ctl_raw({}, '--server', 'http://127.0.0.1:' . $l->sockport, '--timeout', '1',
                                '--api-key-file', ::ctl_key_file(), 'devices');
    is($rc, 3, 'no answer: exit 3');
    like($err, qr/timed out|Timeout/i, 'no answer: a timeout');
    ok(time - $t0 < 5, 'no answer: --timeout 1 holds');
    close $l;
}

# --- TEST 7
sub t_events_certs {
    redis('XADD', 'mdm:webhooks:dead', '*', 'event_id', '1-1', 'error', 'HTTP 500', 'type', 'Authenticate',
          'id', 'DEV-1', 'body', '{}');
    redis('XADD', 'mdm:webhooks:dead', '*', 'event_id', '2-1', 'error', 'timeout', 'type', 'CheckOut',
          'id', 'DEV-2', 'body', '{}');
    my ($rc, $out, $err) = ctl('events', '--limit', '1');
    is($rc, 0, 'events: exit 0') or diag($err);
    like($out, qr/^backlog \d+, pending \d+, dead letters 2$/m, 'events: the summary');
    like($out, qr/^\d+-\d+\s+CheckOut\s+DEV-2\s+2-1\s+timeout\n\d+-\d+\s+Authenticate\s+DEV-1\s+1-1\s+HTTP 500$/m,
         'events: every dead letter, newest first, page by page');
    ($rc, $out, $err) = ctl('events', 'replay', '--count', '1');
    is($rc, 0, 'events replay: exit 0') or diag($err);
    like($out, qr/^replayed 1, dropped 0, remaining 1$/m, 'events replay: the numbers');
    ($rc, $out, $err) = ctl('events', 'replay', '--count', '5000');
    is($rc, 2, 'events replay --count 5000: exit 2');

    redis('HSET', 'mdm:scep:cert:7', 'serial', '7', 'subject', 'CN=device-1,O=Example',
          'not_after', '1827768565', 'sha256', 'ab' x 32, 'issued_at', '1796232565466');
    redis('ZADD', 'mdm:scep:certs', '1827768565', '7');
    ($rc, $out, $err) = ctl('certs', '--subject', 'device-1');
    is($rc, 0, 'certs: exit 0') or diag($err);
    like($out, qr/^7\s+CN=device-1,O=Example\s+2027-12-02 \d\d:\d\d:\d\d\s+2026-\d\d-\d\d \S+\s+(ab){32}$/m,
         'certs: a row');
    ($rc, $out) = ctl('--json', 'certs', '--expiring-before', '1000');
    is_deeply(ctl_json($out)->{certificates}, [], 'certs --expiring-before: none');
}

# --- TEST 8
sub t_blueprint {
    my $bp = file_with('bp.json', '{"commands": [{"request_type": "DeviceInformation"}, '
        . '{"request_type": "Settings", "device_name": "Kiosk"}], "device_configured": true, '
        . '"applies_to": {"all": true}}');
    my ($rc, $out, $err) = ctl('blueprint', 'put', 'bootstrap', $bp);
    is($rc, 0, 'blueprint put: exit 0') or diag($err);
    like($out, qr/^created blueprint bootstrap: 2 command\(s\), applies to all, DeviceConfigured yes$/m,
         'blueprint put: what was stored');
    ($rc, $out, $err) = ctl('blueprint', 'put', 'bootstrap', $bp);
    like($out, qr/^replaced blueprint bootstrap/m, 'blueprint put again: replaced');
    ($rc, $out, $err) = ctl('blueprint', 'list');
    is($rc, 0, 'blueprint list: exit 0');
    like($out, qr/^NAME\s+COMMANDS\s+APPLIES TO\s+DEVICE CONFIGURED\s+UPDATED \(UTC\)\nbootstrap\s+2\s+all\s+yes\s+\d{4}-/m,
         'blueprint list: a table');
    ($rc, $out, $err) = ctl('blueprint', 'show', 'bootstrap');
    is($rc, 0, 'blueprint show: exit 0');
    is(ctl_json($out)->{blueprint}{commands}[1]{device_name}, 'Kiosk', 'blueprint show: the JSON as given');
    ($rc, $out) = ctl('--json', 'blueprint', 'list');
    is(ctl_json($out)->{blueprints}[0]{name}, 'bootstrap', 'blueprint list --json');

    ($rc, $out, $err) = ctl('blueprint', 'put', 'other', file_with('bp2.json', '{"commands": [], "colour": 1}'));
    is($rc, 4, 'a blueprint the server refuses: exit 4');
    like($err, qr/HTTP 400: /, '... its reason');
    ($rc, $out, $err) = ctl('blueprint', 'delete', 'bootstrap');
    is($rc, 0, 'blueprint delete: exit 0');
    like($out, qr/^deleted blueprint bootstrap$/m, 'blueprint delete: says so');
    ($rc, $out, $err) = ctl('blueprint', 'show', 'bootstrap');
    is($rc, 4, 'blueprint show of a deleted one: exit 4');
    ($rc, $out, $err) = ctl('blueprint', 'delete', 'bootstrap');
    is($rc, 4, 'blueprint delete again: exit 4');
}

# --- TEST 9
$ENV{TEST_NGINX_CTL_TLS_PORT} = t::MDM::_pick_port();
sub t_tls {
    my $url = "https://localhost:$ENV{TEST_NGINX_CTL_TLS_PORT}";
    my @key = ('--api-key-file', ::ctl_key_file());
    my ($rc, $out, $err) = ctl_raw({}, '--server', $url, @key, 'devices');
    is($rc, 3, 'TLS with an unknown CA: exit 3');
    like($err, qr/certificate/i, 'TLS with an unknown CA: says so');
    ($rc, $out, $err) = ctl_raw({}, '--server', $url, @key, '--cacert', "$ENV{TEST_NGINX_PKI}/ca.pem", 'devices');
    is($rc, 0, 'TLS --cacert: exit 0') or diag($err);
    like($out, qr/^DEV-1\s/m, 'TLS --cacert: the devices');
    ($rc, $out, $err) = ctl_raw({}, '--config', file_with('tls.conf', "server = $url\ncacert = $ENV{TEST_NGINX_PKI}/ca.pem\n"),
                                @key, 'devices');
    is($rc, 0, 'TLS, cacert from the config file: exit 0') or diag($err);
    ($rc, $out, $err) = ctl_raw({}, '--server', $url, @key, '--cacert', "$::CtlHome/none.pem", 'devices');
    is($rc, 2, '--cacert FILE that is missing: exit 2');
}

# --- TEST 10
sub t_valgrind {
    my @vg = ('valgrind', '-q', '--leak-check=full', '--errors-for-leak-kinds=definite',
              '--error-exitcode=99');
    my $bin = $main::CtlBin;
    my @runs = (
        [ 0, 'devices', '--limit', '1' ], [ 0, '--json', 'device', 'DEV-1' ], [ 4, 'device', 'NOBODY' ],
        [ 0, 'send', 'DEV-1', 'DeviceLock', '--pin', '123456', '--phone-number', '+1 555' ],
        [ 2, 'send', 'DEV-1', 'DeviceLock', '--colour', 'red' ], [ 0, 'queue', 'DEV-1' ],
        [ 1, 'push', 'DEV-1', 'NOBODY' ], [ 0, 'events' ], [ 0, 'templates', 'EraseDevice' ],
        [ 2, 'frobnicate' ], [ 0, '--help' ], [ 2, 'devices', '--limit' ], [ 3, 'down', 'devices' ],
        [ 0, 'clear', 'DEV-1' ], [ 4, 'result', 'NOPE' ], [ 0, 'blueprint', 'list' ],
        [ 0, 'pushcert', 'request', '--email', 'a@example.org', '--dir', "$::CtlHome/vg" ],
        [ 0, 'pushcert', 'vendor-sign', '--dir', "$::CtlHome/vg", '--vendor-cert', vendor_pki()->{vendor},
          '--vendor-key', vendor_pki()->{vendor_key}, '--apple-intermediate', vendor_pki()->{int},
          '--apple-root', vendor_pki()->{root} ],
    );
    for my $r (@runs) {
        my ($want, @args) = @$r;
        my $server = 'http://127.0.0.1:' . server_port();
        $server = 'http://127.0.0.1:1' if $args[0] eq 'down';
        shift @args if $args[0] eq 'down';
        my ($rc, $out, $err) = t::MDM::run_cmd(@vg, $bin, '--server', $server,
                                               '--api-key-file', ::ctl_key_file(), @args);
        my $name = join ' ', grep { defined } @args[0, 1];
        is($rc, $want, "valgrind mdmctl $name: exit $want, no memory error or leak")
            or diag($err);
        unlike($err, qr/==\d+==/, "valgrind mdmctl $name: valgrind said nothing");
    }
}

run_tests();

__DATA__

=== TEST 1: --help lists every command and option; usage errors exit 2 and say why
--- redis_setup eval
\@::ENR
--- request
GET /v1/enrollments
--- after_each eval
\&::t_help



=== TEST 2: configuration: --server/--api-key-file, then MDM_SERVER/MDM_API_KEY, then the config file
--- request
GET /v1/enrollments
--- after_each eval
\&::t_config



=== TEST 3: devices and device: tables, --json, pages, filters, an unknown device
--- redis_setup eval
\@::ENR
--- request
GET /v1/enrollments
--- after_each eval
\&::t_devices



=== TEST 4: send --plist, queue, result, clear, push: tables, JSON and exit codes 0, 1, 4
--- redis_setup eval
\@::ENR
--- request
GET /v1/enrollments
--- after_each eval
\&::t_queue



=== TEST 5: send TEMPLATE: keys from GET /v1/templates, types converted, bad keys refused before sending
--- redis_setup eval
\@::ENR
--- request
GET /v1/enrollments
--- after_each eval
\&::t_send_templates



=== TEST 6: server down, Redis down, not the API, no answer: exit 3
--- redis_setup eval
\@::ENR
--- request
GET /v1/enrollments
--- after_each eval
\&::t_down



=== TEST 7: events (dead letters, replay) and certs
--- redis_setup eval
\@::ENR
--- request
GET /v1/enrollments
--- after_each eval
\&::t_events_certs



=== TEST 8: blueprint put, list, show, delete
--- redis_setup eval
\@::ENR
--- request
GET /v1/enrollments
--- after_each eval
\&::t_blueprint



=== TEST 9: HTTPS: the system's CAs by default, --cacert or "cacert" for a private one
--- http_config
mdm_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
server {
    listen 127.0.0.1:$TEST_NGINX_CTL_TLS_PORT ssl;
    ssl_certificate $TEST_NGINX_PKI/server.pem;
    ssl_certificate_key $TEST_NGINX_PKI/server.key;
    location /v1/ { mdm_api; mdm_api_key ctl-key; }
}
--- redis_setup eval
\@::ENR
--- request
GET /v1/enrollments
--- after_each eval
\&::t_tls



=== TEST 10: under valgrind: no memory error, no leak, the same exit codes
--- redis_setup eval
\@::ENR
--- request
GET /v1/enrollments
--- after_each eval
\&::t_valgrind
--- timeout: 120
