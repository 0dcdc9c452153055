package t::MDMEnroll;

# Helpers for the enrollment tests (t/enroll*.t): a complete XML plist
# reader (t::MDM's plist_get sees the top level only), CMS signing and
# verification with the openssl CLI, and the checks every generated
# profile must pass.

use strict;
use warnings;

use Exporter ();
use File::Temp qw(tempfile);
use MIME::Base64 qw(decode_base64);
use Test::More ();

our @ISA = ('Exporter');
our @EXPORT = qw(parse_plist machineinfo_plist cms_sign cms_verify
                 check_profile profile_payload scep_setup send1 device_send
                 scep_enroll cert_file_sha256);

my %Esc = (lt => '<', gt => '>', amp => '&', quot => '"', apos => "'");

sub _unesc {
    my ($s) = @_;
    $s =~ s/&#x([0-9a-fA-F]+);/chr hex $1/ge;
    $s =~ s/&#(\d+);/chr $1/ge;
    $s =~ s/&(lt|gt|amp|quot|apos);/$Esc{$1}/g;
    return $s;
}

# parse_plist($xml) -> Perl data: dicts are hashrefs, arrays arrayrefs,
# strings plain scalars; integers, booleans and data are blessed scalar
# refs (PInt, PBool, PData) so that tests can check the type.
sub parse_plist {
    my ($xml) = @_;
    $xml =~ m{<plist[^>]*>(.*)</plist>}s or die "not an XML plist\n";
    my $s = $1;
    my $v = _value(\$s);
    $s =~ m{\G\s*\z}gc or die "trailing data in plist\n";
    return $v;
}

sub _value {
    my ($s) = @_;
    $$s =~ m{\G\s*}gc;

    if ($$s =~ m{\G<dict\s*/>}gc) { return {} }
    if ($$s =~ m{\G<array\s*/>}gc) { return [] }

    if ($$s =~ m{\G<dict>}gc) {
        my %h;
        while (1) {
            $$s =~ m{\G\s*}gc;
            last if $$s =~ m{\G</dict>}gc;
            $$s =~ m{\G<key>(.*?)</key>}gcs
                or die "plist: no <key> at " . pos($$s) . "\n";
            my $k = _unesc($1);
            die "plist: key $k twice\n" if exists $h{$k};
            $h{$k} = _value($s);
        }
        return \%h;
    }

    if ($$s =~ m{\G<array>}gc) {
        my @a;
        while (1) {
            $$s =~ m{\G\s*}gc;
            last if $$s =~ m{\G</array>}gc;
            push @a, _value($s);
        }
        return \@a;
    }

    return '' if $$s =~ m{\G<string\s*/>}gc;
    return _unesc($1) if $$s =~ m{\G<string>(.*?)</string>}gcs;
    if ($$s =~ m{\G<integer>\s*(-?\d+)\s*</integer>}gc) {
        my $n = $1 + 0;
        return bless \$n, 'PInt';
    }
    if ($$s =~ m{\G<(true|false)\s*/>}gc) {
        my $b = $1 eq 'true' ? 1 : 0;
        return bless \$b, 'PBool';
    }
    if ($$s =~ m{\G<data>(.*?)</data>}gcs) {
        my $d = decode_base64($1);
        return bless \$d, 'PData';
    }
    die "plist: unknown value at " . pos($$s) . ": "
        . substr($$s, pos($$s) // 0, 40) . "\n";
}

# A MachineInfo plist as Setup Assistant sends it.
sub machineinfo_plist {
    my (%k) = @_;
    my $x = qq{<?xml version="1.0" encoding="UTF-8"?>\n}
          . qq{<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">\n}
          . qq{<plist version="1.0">\n<dict>\n};
    for my $key (sort keys %k) {
        $x .= "\t<key>$key</key>\n\t<string>$k{$key}</string>\n";
    }
    return $x . "</dict>\n</plist>\n";
}

sub _tmp {
    my ($data) = @_;
    my ($fh, $name) = tempfile('mdm-enroll-XXXXXX', TMPDIR => 1, UNLINK => 1);
    binmode $fh;
    print {$fh} $data;
    close $fh;
    return $name;
}

sub _slurp {
    my ($f) = @_;
    open my $fh, '<:raw', $f or die "$f: $!";
    local $/;
    return scalar <$fh>;
}

# cms_sign($data, $cert_pem_path, $key_path) -> DER CMS SignedData with the
# data inside (attached), as a device signs its MachineInfo.
sub cms_sign {
    my ($data, $cert, $key) = @_;
    my $in = _tmp($data);
    my (undef, $out) = tempfile('mdm-enroll-XXXXXX', TMPDIR => 1,
                                UNLINK => 1);
    system('openssl', 'cms', '-sign', '-nodetach', '-binary', '-in', $in,
           '-signer', $cert, '-inkey', $key, '-outform', 'DER',
           '-out', $out) == 0 or die "openssl cms -sign failed\n";
    return _slurp($out);
}

# cms_verify($der, $ca_pem_path) -> the content if the signature verifies
# against the CA, else undef.
sub cms_verify {
    my ($der, $ca) = @_;
    my $in = _tmp($der);
    my (undef, $out) = tempfile('mdm-enroll-XXXXXX', TMPDIR => 1,
                                UNLINK => 1);
    my $rc = system("openssl cms -verify -binary -inform DER -in '$in'"
                    . " -CAfile '$ca' -purpose any -out '$out' 2>/dev/null");
    return $rc == 0 ? _slurp($out) : undef;
}

# the payload of a profile with that PayloadType
sub profile_payload {
    my ($p, $type) = @_;
    my @m = grep { $_->{PayloadType} eq $type } @{ $p->{PayloadContent} };
    return $m[0];
}

sub _int { my ($v) = @_; return ref $v eq 'PInt' ? $$v : undef }
sub _bool { my ($v) = @_; return ref $v eq 'PBool' ? $$v : undef }

# check_profile($name, $plist_data, %want): every key the issue names, one
# test each; want: topic, server_url, checkin_url, scep_url, org, name,
# challenge (undef: a fresh one-time challenge), root (DER or undef)
sub check_profile {
    my ($name, $p, %w) = @_;
    my $is = \&Test::More::is;

    $is->($p->{PayloadType}, 'Configuration', "$name - PayloadType");
    $is->(_int($p->{PayloadVersion}), 1, "$name - PayloadVersion");
    $is->($p->{PayloadIdentifier}, 'ngx-mdm.enrollment',
          "$name - PayloadIdentifier (stable, so a renewal replaces it)");
    Test::More::like($p->{PayloadUUID}, qr/^[0-9A-F]{8}-[0-9A-F]{4}-4[0-9A-F]{3}-[89AB][0-9A-F]{3}-[0-9A-F]{12}\z/,
                     "$name - PayloadUUID");
    $is->($p->{PayloadDisplayName}, $w{name}, "$name - PayloadDisplayName");
    $is->($p->{PayloadOrganization}, $w{org}, "$name - PayloadOrganization");

    my $n = 2 + (defined $w{root} ? 1 : 0);
    $is->(scalar @{ $p->{PayloadContent} }, $n, "$name - $n payloads");

    my $scep = profile_payload($p, 'com.apple.security.scep') || {};
    my $mdm = profile_payload($p, 'com.apple.mdm') || {};
    my $c = $scep->{PayloadContent} || {};

    for my $pl ($scep, $mdm) {
        Test::More::ok($pl->{PayloadUUID} && $pl->{PayloadIdentifier}
                       && _int($pl->{PayloadVersion}) == 1
                       && $pl->{PayloadUUID} ne $p->{PayloadUUID},
                       "$name - $pl->{PayloadType}: own UUID, identifier, version");
        $is->($pl->{PayloadOrganization}, $w{org},
              "$name - $pl->{PayloadType}: PayloadOrganization");
    }

    $is->($c->{URL}, $w{scep_url}, "$name - SCEP URL");
    $is->($c->{Name}, 'ngx_mdm', "$name - SCEP Name");
    $is->(_int($c->{Keysize}), 2048, "$name - SCEP Keysize");
    $is->($c->{'Key Type'}, 'RSA', "$name - SCEP Key Type");
    $is->(_int($c->{'Key Usage'}), 5, "$name - SCEP Key Usage");
    my ($cn) = map { $_->[0][1] } grep { $_->[0][0] eq 'CN' }
               @{ $c->{Subject} || [] };
    Test::More::like($cn // '', qr/^ngx_mdm identity [0-9A-F-]{36}\z/,
                     "$name - SCEP Subject CN, unique");
    my ($o) = map { $_->[0][1] } grep { $_->[0][0] eq 'O' }
              @{ $c->{Subject} || [] };
    $is->($o, $w{org}, "$name - SCEP Subject O");
    if (defined $w{challenge}) {
        $is->($c->{Challenge}, $w{challenge}, "$name - SCEP static Challenge");
    } else {
        Test::More::like($c->{Challenge} // '', qr/^[A-Za-z0-9_-]{43}\z/,
                         "$name - SCEP one-time Challenge (32 bytes, base64url)");
    }

    $is->($mdm->{ServerURL}, $w{server_url}, "$name - ServerURL");
    $is->($mdm->{CheckInURL}, $w{checkin_url}, "$name - CheckInURL");
    $is->($mdm->{Topic}, $w{topic}, "$name - Topic");
    $is->($mdm->{IdentityCertificateUUID}, $scep->{PayloadUUID},
          "$name - IdentityCertificateUUID is the SCEP payload's");
    $is->(_bool($mdm->{SignMessage}), 1, "$name - SignMessage");
    $is->(_int($mdm->{AccessRights}), 8191, "$name - AccessRights");
    $is->(_bool($mdm->{CheckOutWhenRemoved}), 1, "$name - CheckOutWhenRemoved");
    Test::More::is_deeply($mdm->{ServerCapabilities},
        [ 'com.apple.mdm.per-user-connections', 'com.apple.mdm.bootstraptoken' ],
        "$name - ServerCapabilities");

    if (defined $w{root}) {
        my $root = profile_payload($p, 'com.apple.security.root') || {};
        Test::More::ok(ref $root->{PayloadContent} eq 'PData'
                       && ${ $root->{PayloadContent} } eq $w{root},
                       "$name - root payload holds the CA certificate (DER)");
    }

    return $c->{Challenge};
}

# scep_setup($dir) -> builds t/scepclient.c into $dir and makes a test CA
# ($dir/ca.pem, $dir/ca.key) that both signs SCEP certificates and is the
# mdm_identity_ca: a device then has nothing but what our components gave it.
sub scep_setup {
    my ($dir) = @_;
    mkdir $dir;
    t::MDM::_run('gcc', '-O1', '-o', "$dir/scepclient", 't/scepclient.c',
                 '-lcrypto');
    t::MDM::_run('openssl', 'req', '-x509', '-newkey', 'rsa:2048', '-nodes',
                 '-keyout', "$dir/ca.key", '-out', "$dir/ca.pem",
                 '-days', '3650', '-subj', '/O=ngx_mdm tests/CN=Test SCEP CA',
                 '-addext', 'basicConstraints=critical,CA:TRUE',
                 '-addext', 'keyUsage=critical,keyCertSign,cRLSign,'
                            . 'digitalSignature,keyEncipherment');
    return $dir;
}

# send1($method, $path, $body, [headers]) -> one parsed response
sub send1 {
    my ($method, $path, $body, $headers) = @_;
    my $r = t::MDM::concurrent_requests(Test::Nginx::Socket::server_port(),
                [ t::MDM::http_request($method, $path, $body, $headers) ]);
    return $r->[0];
}

# device_send($path, $content_type, $body, $dir) -> a device request signed
# (Mdm-Signature) by the identity in $dir (cert.pem, key.pem)
sub device_send {
    my ($path, $type, $body, $dir) = @_;
    $body =~ s/^\s+|\s+\z//g;
    my $sig = t::MDM::mdm_signature($body, { cert => "$dir/cert.pem",
                                             key => "$dir/key.pem" });
    return send1(PUT => $path, $body,
                 [ 'Content-Type' => $type, 'Mdm-Signature' => $sig ]);
}

# scep_enroll($cadir, $name, $url, $cn, $challenge) -> ($dir, {CertRep})
# A PKCSReq as an Apple device makes it (t/scepclient.c) for the SCEP URL of
# a profile, POSTed to this nginx; the CertRep checked in full by the client
# (pkiStatus, failInfo, ...; on SUCCESS $dir/cert.pem and $dir/key.pem).
sub scep_enroll {
    my ($ca, $name, $url, $cn, $challenge) = @_;
    my $dir = "$ca/$name";
    mkdir $dir;
    t::MDM::_run("$ca/scepclient", 'req', $dir, "$ca/ca.pem", $cn,
                 $challenge, 'aes128', 'sha256');
    my $path = $url =~ m{^https?://[^/]+(/.*)$} ? $1 : die "URL $url\n";
    my $r = send1(POST => "$path?operation=PKIOperation",
                  t::MDM::_slurp("$dir/req.der"),
                  [ 'Content-Type' => 'application/x-pki-message' ]);
    t::MDM::_spew("$dir/rep.der", $r->{body} // '');
    my ($st, $out) = t::MDM::run_cmd("$ca/scepclient", 'rep', $dir,
                                     "$ca/ca.pem", "$dir/rep.der",
                                     "$ca/ca.pem");
    my %rep = map { /^([^=]+)=(.*)$/ ? ($1, $2) : () } split /\n/, $out // '';
    $rep{http_status} = $r->{status};
    return ($dir, \%rep);
}

# the SHA-256 (lower-case hex) of a PEM certificate, as bindings name it
sub cert_file_sha256 {
    my ($pem) = @_;
    my $out = t::MDM::_run('openssl', 'x509', '-in', $pem, '-outform', 'DER');
    require Digest::SHA;
    return Digest::SHA::sha256_hex($out);
}

1;
