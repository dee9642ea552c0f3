// Avatars and community icons (docs/api.md "Files"): upload the cropped image, then
// point the profile or the community at it. The stores change at once, so every Avatar
// and the community rail show the new picture without waiting for an event.
import type { Community, User } from '@/api/types';
import { api, postFile, unwrap } from './api';
import type { UploadedFile } from './uploader';
import { communitiesStore, upsertCommunity } from '@/stores/communities';
import { sessionStore } from '@/stores/session';

function applyUser(u: User) {
  sessionStore.set((s) => ({ ...s, user: u }));
  communitiesStore.set((s) => ({ ...s, users: { ...s.users, [u.id]: { id: u.id, username: u.username, display_name: u.display_name ?? null, avatar_url: u.avatar_url ?? null } } }));
}

export async function setAvatar(image: Blob, filename: string): Promise<User> {
  const up = await postFile<UploadedFile>('/api/v1/users/@me/avatar', image, filename);
  const u = await unwrap<User>(api.PATCH('/api/v1/users/@me', { body: { avatar_id: up.id } }));
  applyUser(u);
  return u;
}

export async function clearAvatar(): Promise<User> {
  const u = await unwrap<User>(api.PATCH('/api/v1/users/@me', { body: { avatar_id: null } }));
  applyUser(u);
  return u;
}

/** Uploads the icon and sets it. The server's refusal (403 without MANAGE_COMMUNITY,
 *  404 for a community you are not in, 413, a bad crop) is the error shown. */
export async function setCommunityIcon(communityId: string, image: Blob, filename: string): Promise<Community> {
  const up = await postFile<UploadedFile>(`/api/v1/communities/${communityId}/icon`, image, filename);
  return patchIcon(communityId, up.id);
}

export async function clearCommunityIcon(communityId: string): Promise<Community> {
  return patchIcon(communityId, null);
}

async function patchIcon(communityId: string, iconId: string | null): Promise<Community> {
  const c = await unwrap<Community>(api.PATCH('/api/v1/communities/{id}', { params: { path: { id: communityId } }, body: { icon_id: iconId } }));
  communitiesStore.set((s) => upsertCommunity(s, c));
  return c;
}
