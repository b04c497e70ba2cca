// The one place that names the D-Bus library. dbus-next 0.10.2 is unmaintained since 2022
// (docs/platform-notes.md §2); a fork with the same API (e.g. @jellybrick/dbus-next) is this one line.
export { DBusError, Message, NameFlag, RequestNameReply, Variant, interface as dbusInterface, sessionBus } from 'dbus-next';
export type { MessageBus } from 'dbus-next';
